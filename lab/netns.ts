// Network-namespace primitives for the test lab: run iproute2 against a
// namespace (`ip -n NS ...`, never the machine's own namespace), run commands
// inside one (`ip netns exec`), and track long-running processes so that they
// die with the test: each is spawned as its own process group and killed as a
// group by stopProcess(), and with SIGKILL on process exit, SIGINT or SIGTERM.
import { spawn, spawnSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import { appendFileSync, closeSync, openSync, readFileSync } from 'node:fs';

export const NETNS_DIR = '/run/netns';

export interface ExecResult { stdout: string; stderr: string; code: number | null; signal: NodeJS.Signals | null }
export interface ExecOptions {
  /** Kill the whole process group and reject after this long. Default 10 s. */
  timeoutMs?: number;
  /** Run with this directory as /run (the host's own /run: see inOwnRun). */
  runDir?: string;
  /** Written to stdin, which is then closed. */
  input?: string;
  /** Replaces the environment (default: the test process's environment). */
  env?: NodeJS.ProcessEnv;
}

/** Runs cmd in the test's own namespace. Rejects only on spawn failure or timeout, never on a non-zero exit. */
export function exec(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true, env: opts.env ?? process.env });
    const untrack = track(child);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout!.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.stdin!.on('error', () => { /* the command may exit without reading stdin */ });
    child.stdin!.end(opts.input ?? '');
    const timer = setTimeout(() => { timedOut = true; killGroup(child, 'SIGKILL'); }, timeoutMs);
    child.on('error', (err) => { clearTimeout(timer); untrack(); reject(err); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      untrack();
      if (timedOut) reject(new Error(`${[cmd, ...args].join(' ')}: timed out after ${timeoutMs} ms`));
      else resolve({ stdout, stderr, code, signal });
    });
  });
}

/** Like exec() but rejects on a non-zero exit, quoting the command and its stderr; resolves to stdout. */
export async function execOk(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<string> {
  const r = await exec(cmd, args, opts);
  if (r.code !== 0) {
    throw new Error(`${[cmd, ...args].join(' ')}: exit ${r.code ?? r.signal}: ${(r.stderr || r.stdout).trim()}`);
  }
  return r.stdout;
}

/** `ip netns exec NS cmd args...`; like exec(), resolves with the exit code instead of rejecting on it. */
export function execIn(ns: string, cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return exec('ip', ['netns', 'exec', ns, ...inOwnRun(opts.runDir, cmd, args)], opts);
}

/**
 * The command line that runs cmd with runDir mounted over /run in a mount
 * namespace of its own (`ip netns exec` already made one per command, slave to
 * the machine's; this one is private): a lab host's /run, as a real host has,
 * so what daemons put there (wireguard-go's /run/wireguard/<dev>.sock) is the
 * host's own and the machine's /run is never written. Every process of the
 * host that must see it (weftd, wg) runs this way with the same runDir.
 */
export function inOwnRun(runDir: string | undefined, cmd: string, args: readonly string[]): string[] {
  if (runDir === undefined) return [cmd, ...args];
  return ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', 'mount --bind "$0" /run && exec "$@"', runDir, cmd, ...args];
}

/** `ip -n NS args...`, rejecting on failure. */
export function ip(ns: string, args: readonly string[]): Promise<string> {
  return execOk('ip', ['-n', ns, ...args]);
}

/** Parsed `ip -n NS -j args...` (e.g. ['link', 'show', 'master', 'weft0']); [] when iproute2 prints nothing. */
export async function ipJson<T = any>(ns: string, args: readonly string[]): Promise<T> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const out = await execOk('ip', ['-n', ns, '-j', ...args]);
  return (out.trim() === '' ? [] : JSON.parse(out)) as T;
}

/** Parsed `bridge -n NS -j args...` (e.g. ['fdb', 'show', 'dev', 'weft.1']). */
export async function bridgeJson<T = any>(ns: string, args: readonly string[]): Promise<T> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const out = await execOk('bridge', ['-n', ns, '-j', ...args]);
  return (out.trim() === '' ? [] : JSON.parse(out)) as T;
}

export async function listNetns(): Promise<string[]> {
  const out = await execOk('ip', ['netns', 'list']);
  return out.split('\n').map((l) => l.split(' ')[0]!).filter(Boolean);
}

/**
 * The test runner names a file in WEFT_NETNS_REGISTRY; every namespace made
 * here is listed in it first, so the runner can remove exactly what a test
 * file left behind, and never another run's namespaces.
 */
export function registerNetns(name: string): void {
  const reg = process.env.WEFT_NETNS_REGISTRY;
  if (reg) appendFileSync(reg, `${name}\n`);
}

/** `ip netns add NAME` (the caller records it, then brings lo up: nothing may be lost in between). */
export async function addNetns(name: string): Promise<void> {
  registerNetns(name);
  await execOk('ip', ['netns', 'add', name]);
}

/** Kills every process still inside the namespace (it must be one we own), then `ip netns del`. */
export async function delNetns(name: string): Promise<void> {
  const pids = await exec('ip', ['netns', 'pids', name]);
  if (pids.code !== 0 && /No such file|not found|does not exist/i.test(pids.stderr)) return;
  for (const pid of pids.stdout.split('\n').filter(Boolean)) {
    try { process.kill(Number(pid), 'SIGKILL'); } catch { /* already gone */ }
  }
  const r = await exec('ip', ['netns', 'del', name]);
  if (r.code !== 0 && !/No such file/i.test(r.stderr)) throw new Error(`ip netns del ${name}: ${r.stderr.trim()}`);
}

/** Synchronous delNetns() for exit hooks. */
export function delNetnsSync(name: string): void {
  const pids = spawnSync('ip', ['netns', 'pids', name], { encoding: 'utf8' }).stdout ?? '';
  for (const pid of pids.split('\n').filter(Boolean)) {
    try { process.kill(Number(pid), 'SIGKILL'); } catch { /* already gone */ }
  }
  spawnSync('ip', ['netns', 'del', name]);
}

// ---- tracked processes ----

export interface TrackedProcess extends ChildProcess {
  readonly ns: string;
  /** stdout+stderr go here unless spawned with stdio 'pipe'. */
  readonly logPath: string | undefined;
  /** Settles when the process has exited (never rejects). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Stops tracking: the process is no longer killed when this process exits (weft lab --keep). */
  detach(): void;
}

export interface SpawnInOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Append stdout and stderr to this file (the lab sets this); otherwise use `stdio`. */
  logPath?: string;
  /** Used only without logPath. Default 'pipe'. */
  stdio?: 'pipe' | 'ignore' | 'inherit';
  /**
   * Enter with nsenter instead of `ip netns exec`, which remounts /sys (then
   * dockerd finds no cgroup mounts): `nsenter --net=/run/netns/NS`, or with
   * `target`, that process's network and mount namespaces.
   */
  nsenter?: { target?: number };
  /** Run with this directory as /run (see inOwnRun). */
  runDir?: string;
}

/**
 * Spawns `ip netns exec NS cmd args...` (or nsenter, see SpawnInOptions) as its
 * own process group (ip and nsenter exec the command, and so do unshare and sh with runDir, so the pid is the command's). Tracked until it exits: killed with
 * SIGKILL if the test process exits or gets SIGINT/SIGTERM first.
 */
export function spawnIn(ns: string, cmd: string, args: readonly string[], opts: SpawnInOptions = {}): TrackedProcess {
  let stdio: StdioOptions;
  let fd: number | undefined;
  if (opts.logPath) {
    fd = openSync(opts.logPath, 'a');
    stdio = ['ignore', fd, fd];
  } else {
    stdio = opts.stdio ?? 'pipe';
  }
  const enter = !opts.nsenter
    ? ['ip', 'netns', 'exec', ns]
    : opts.nsenter.target !== undefined
      ? ['nsenter', `--target=${opts.nsenter.target}`, '--mount', '--net', '--']
      : ['nsenter', `--net=${NETNS_DIR}/${ns}`, '--'];
  const child = spawn(enter[0]!, [...enter.slice(1), ...inOwnRun(opts.runDir, cmd, args)], {
    stdio, detached: true, env: opts.env ?? process.env, ...(opts.cwd ? { cwd: opts.cwd } : {}),
  });
  if (fd !== undefined) closeSync(fd);
  const untrack = track(child);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => { untrack(); resolve({ code, signal }); });
    child.once('error', () => { untrack(); resolve({ code: null, signal: null }); });
  });
  const detach = () => {
    untrack();
    child.unref();
  };
  return Object.assign(child, { ns, logPath: opts.logPath, exited, detach });
}

export function isRunning(p: ChildProcess): boolean {
  return p.exitCode === null && p.signalCode === null;
}

/**
 * Sends `signal` (default SIGTERM) to the process group, waits up to graceMs
 * (default 2 s) for the leader to exit, then SIGKILLs the group. Resolves once
 * the leader has exited.
 */
export async function stopProcess(p: TrackedProcess, opts: { signal?: NodeJS.Signals; graceMs?: number } = {}): Promise<void> {
  if (isRunning(p)) {
    killGroup(p, opts.signal ?? 'SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<'timeout'>((r) => { timer = setTimeout(() => r('timeout'), opts.graceMs ?? 2000); });
    const first = await Promise.race([p.exited, graceOver]);
    clearTimeout(timer);
    if (first === 'timeout') killGroup(p, 'SIGKILL');
    await p.exited;
  }
  // Children that outlived the leader still hold its process group.
  killGroup(p, 'SIGKILL');
}

/** Reads a tracked process's log file ('' if none yet). */
export function readLog(p: { logPath: string | undefined }): string {
  if (!p.logPath) return '';
  try { return readFileSync(p.logPath, 'utf8'); } catch { return ''; }
}

/** Alive and not a zombie (a killed orphan stays a zombie until init reaps it). */
export function isPidAlive(pid: number): boolean {
  try { return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8')); } catch { return false; }
}

/** Polls until pid is gone; resolves false if it is still alive after ms. */
export async function waitPidGone(pid: number, ms = 2000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 20))) if (!isPidAlive(pid)) return true;
  return !isPidAlive(pid);
}

function killGroup(p: ChildProcess, signal: NodeJS.Signals): void {
  if (p.pid === undefined) return;
  try { process.kill(-p.pid, signal); } catch { /* group gone */ }
}

const live = new Set<ChildProcess>();
const exitHooks = new Set<() => void>();
let hooksInstalled = false;

function track(child: ChildProcess): () => void {
  installHooks();
  live.add(child);
  return () => { live.delete(child); };
}

/** Registers a synchronous cleanup to run on process exit, SIGINT or SIGTERM; returns its remover. */
export function onExitCleanup(fn: () => void): () => void {
  installHooks();
  exitHooks.add(fn);
  return () => { exitHooks.delete(fn); };
}

function runExitCleanup(): void {
  for (const child of live) killGroup(child, 'SIGKILL');
  live.clear();
  for (const fn of exitHooks) {
    try { fn(); } catch { /* keep cleaning */ }
  }
  exitHooks.clear();
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', runExitCleanup);
  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.once(sig, () => { runExitCleanup(); process.exit(code); });
  }
}
