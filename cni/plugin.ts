// weft's CNI plugin, flannel's (flannel-io/cni-plugin) in behaviour: ADD reads
// subnet.env, builds the delegate's config (delegate.ts), saves it under
// dataDir by container ID and runs the delegate (bridge + host-local by
// default); DEL runs the delegate with the saved config, so it frees exactly
// what ADD took even after the lease changed. Where weft differs, on purpose:
//   - ADD waits up to subnetFileTimeout seconds (default 10) for subnet.env,
//     then fails with code 11 (try again later) saying weftd is not ready;
//     flannel's fails at once with code 999.
//   - CHECK asks the delegate (bridge and host-local verify the interface,
//     address and routes) instead of answering success without looking.
//   - A failed delegate DEL keeps the saved config, so the runtime's retry can
//     still free the address; STATUS answers 50 while weftd is not ready.
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { SubnetEnvError, waitForSubnetEnv, WeftdNotReadyError, type FlannelSubnetEnv } from '../host/subnet-env.js';
import { buildDelegate, sortedJson } from './delegate.js';
import { invokeDelegate } from './invoke.js';
import { parsePluginConf, type PluginConf } from './netconf.js';
import { CniError, CNI_ERR, CURRENT_VERSION, NoCommand, readCniArgs, SUPPORTED_VERSIONS, versionAtLeast, type CniArgs } from './spec.js';

export interface PluginOutcome {
  /** The process's exit status: 0, or 1 with an error object on stdout. */
  readonly status: 0 | 1;
  readonly stdout: string;
  readonly stderr: string;
}

type Env = Readonly<Record<string, string | undefined>>;

const NOT_READY_DETAILS =
  'weftd writes this file (its --subnet-file) once it holds a subnet lease; check that weftd runs on this host ' +
  '(systemctl status weftd, journalctl -u weftd) and that the plugin\'s subnetFile is weftd\'s --subnet-file';

/** One plugin invocation: the CNI_* environment and stdin in, exit status and output out. */
export async function runPlugin(env: Env, stdin: string, about: string): Promise<PluginOutcome> {
  let version: string | undefined;
  try {
    const args = readCniArgs(env);
    if (args.command === 'VERSION') return ok(versionReply(stdin));
    const conf = parsePluginConf(stdin, { checkVersion: true });
    version = conf.cniVersion || undefined;
    switch (args.command) {
      case 'ADD':
        return ok(await add(args, conf, env));
      case 'DEL':
        return ok(await del(args, conf, env));
      case 'CHECK':
        return ok(await check(args, conf, env));
      case 'STATUS':
        await readSubnetEnv(conf, 0, CNI_ERR.PLUGIN_NOT_AVAILABLE);
        return ok('');
      case 'GC':
        return ok('');
    }
  } catch (e) {
    if (e instanceof NoCommand) {
      return { status: 0, stdout: '', stderr: `${about}\nCNI protocol versions supported: ${SUPPORTED_VERSIONS.join(', ')}\n` };
    }
    const err = e instanceof CniError ? e : new CniError(CNI_ERR.INTERNAL, (e as Error).message ?? String(e));
    return { status: 1, stdout: JSON.stringify(err.toJSON(version)) + '\n', stderr: '' };
  }
}

function ok(stdout: string): PluginOutcome {
  return { status: 0, stdout, stderr: '' };
}

function versionReply(stdin: string): string {
  let v = CURRENT_VERSION;
  try {
    const c = (JSON.parse(stdin) as { cniVersion?: unknown }).cniVersion;
    if (typeof c === 'string' && SUPPORTED_VERSIONS.includes(c)) v = c;
  } catch {
    /* VERSION needs no config */
  }
  return JSON.stringify({ cniVersion: v, supportedVersions: SUPPORTED_VERSIONS }) + '\n';
}

async function readSubnetEnv(conf: PluginConf, timeoutMs: number, notReadyCode: number): Promise<FlannelSubnetEnv> {
  try {
    return await waitForSubnetEnv(conf.subnetFile, timeoutMs);
  } catch (e) {
    if (e instanceof WeftdNotReadyError) throw new CniError(notReadyCode, e.message, NOT_READY_DETAILS);
    if (e instanceof SubnetEnvError) throw new CniError(CNI_ERR.BAD_SUBNET_ENV, `failed to load flannel 'subnet.env' file: ${e.message}`, 'weftd writes this file whole; something else wrote or edited it');
    throw e;
  }
}

const scratchPath = (conf: PluginConf, args: CniArgs) => join(conf.dataDir, args.containerId);

/** flannel's saveScratchNetConf: <dataDir>/<container ID>, 0600, synced before the delegate runs. */
function saveScratch(path: string, dir: string, text: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const tmp = `${path}.${process.pid}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    throw new CniError(CNI_ERR.IO_FAILURE, `cannot save the delegate config to ${path}: ${(e as Error).message}`);
  }
}

/** The saved delegate config, or undefined when ADD never saved one for this container. */
function loadScratch(path: string): Record<string, unknown> | undefined | 'unparsable' {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CniError(CNI_ERR.IO_FAILURE, `cannot read ${path}: ${(e as Error).message}`);
  }
  try {
    const v = JSON.parse(text) as unknown;
    return typeof v === 'object' && v !== null && typeof (v as { type?: unknown }).type === 'string' ? (v as Record<string, unknown>) : 'unparsable';
  } catch {
    return 'unparsable';
  }
}

async function add(args: CniArgs, conf: PluginConf, env: Env): Promise<string> {
  const subnetEnv = await readSubnetEnv(conf, conf.subnetFileTimeoutMs, CNI_ERR.TRY_AGAIN_LATER);
  const delegate = buildDelegate(conf, subnetEnv);
  const text = sortedJson(delegate);
  saveScratch(scratchPath(conf, args), conf.dataDir, text);
  return invokeDelegate('ADD', delegate.type as string, text, env, args.path);
}

async function del(args: CniArgs, conf: PluginConf, env: Env): Promise<string> {
  const path = scratchPath(conf, args);
  const saved = loadScratch(path);
  // Nothing saved: never added, or already deleted. DEL must succeed either way.
  if (saved === undefined) return '';
  if (saved === 'unparsable') {
    rmSync(path, { force: true });
    return '';
  }
  if (conf.raw.runtimeConfig !== undefined) saved.runtimeConfig = conf.raw.runtimeConfig;
  await invokeDelegate('DEL', saved.type as string, sortedJson(saved), env, args.path);
  rmSync(path, { force: true });
  return '';
}

async function check(args: CniArgs, conf: PluginConf, env: Env): Promise<string> {
  if (!versionAtLeast(conf.cniVersion || '0.1.0', '0.4.0')) {
    throw new CniError(CNI_ERR.INCOMPATIBLE_VERSION, 'config version does not allow CHECK', `cniVersion is ${JSON.stringify(conf.cniVersion || '0.1.0')}; CHECK needs 0.4.0 or later`);
  }
  const path = scratchPath(conf, args);
  const saved = loadScratch(path);
  if (saved === undefined || saved === 'unparsable') {
    throw new CniError(CNI_ERR.UNKNOWN_CONTAINER, `container ${args.containerId} is not attached by this plugin (no ${path})`);
  }
  const prev = conf.raw.prevResult;
  const delegate = { ...saved, cniVersion: conf.cniVersion, ...(prev !== undefined ? { prevResult: withRouteGateways(prev) } : {}) };
  await invokeDelegate('CHECK', saved.type as string, sortedJson(delegate), env, args.path);
  return '';
}

/**
 * prevResult with each gateway-less route given its family's gateway. The
 * bridge plugin installs the network route (flannel's `{"dst": network}`) via
 * the bridge's address, but its CHECK (containernetworking-plugins 1.1.1,
 * Debian 12) looks for a route without a gateway and fails on every container
 * flannel's config made; the route it looks for after this is the one it made.
 */
export function withRouteGateways(prev: unknown): unknown {
  if (typeof prev !== 'object' || prev === null) return prev;
  const p = prev as { ips?: Array<{ address?: unknown; gateway?: unknown }>; routes?: Array<Record<string, unknown>> };
  if (!Array.isArray(p.routes) || !Array.isArray(p.ips)) return prev;
  const gw = (v6: boolean) => p.ips!.find((ip) => typeof ip.gateway === 'string' && ip.gateway.includes(':') === v6)?.gateway;
  const routes = p.routes.map((r) => (r.gw === undefined && typeof r.dst === 'string' && gw(r.dst.includes(':')) ? { ...r, gw: gw(r.dst.includes(':')) } : r));
  return { ...p, routes };
}
