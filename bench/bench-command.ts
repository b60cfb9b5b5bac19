// `weft bench`: every data path of DATA_PATHS measured in one run, each in a
// fresh lab (built, measured, removed), then the control-plane scale run in a
// 3-host lab; the figures go to stdout (markdown), latest.json, latest.md and
// throughput.svg. With --ipv6 the labs are dual stack and each path is measured
// over IPv6 too, right after IPv4 in each repetition, so the two compare within
// one run. It measures and reports; it asserts nothing about speed.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, release, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError, type Command, type FlagSet, type ParsedFlags } from '../lib/flags.js';
import { withLab } from '../lab/lab.js';
import { controlPlaneSvg } from './control-plane-chart.js';
import { MAX_LEASES, MAX_PUTS, runControlPlane, scaleEtcdDataRoot } from './control-plane.js';
import { DATA_PATHS, PathUnavailableError, REFERENCE_PATHS, type DataPath, type PathEndpoints } from './data-paths.js';
import { checkReachable, largeUdpLength, measureOnce, measureTcpPing, type MeasureSettings, type RepFigures } from './measure.js';
import {
  addRatios, ipv6Metrics, medianFigures, metrics, toJson, toMarkdown, toSvg, type BenchReport, type BenchSettings, type Ipv6Report, type Machine, type PathReport,
} from './report.js';
import { formatSpeedProbe, speedProbe } from './speed-probe.js';

/** The tracked results the README shows: written only by a full run with the defaults. */
export const DEFAULT_OUT = fileURLToPath(new URL('../../bench/results/', import.meta.url));
/** Where a quick or partial run writes unless --out says otherwise (untracked: .gitignore). */
export const PARTIAL_OUT = fileURLToPath(new URL('../../bench/results/partial/', import.meta.url));
/**
 * Flags that make a run quick or partial: with any of them the tracked full-run results stay untouched.
 * --ipv6 is not one: `weft bench --ipv6` is a full run (every path, IPv4 and IPv6) and writes the tracked results.
 */
const PARTIAL_FLAGS = ['quick', 'reps', 'seconds', 'paths', 'leases', 'puts', 'scale-hosts', 'no-scale'] as const;

const FLAGS: FlagSet = {
  command: 'weft bench',
  usage: 'weft bench [--quick] [--ipv6] [--reps N] [--seconds N] [--paths ID,...] [--leases N] [--puts N] [--scale-hosts N] [--no-scale] [--out DIR]',
  positional: true,
  flags: [
    { name: 'quick', kind: 'bool', help: 'short smoke run: 1 rep, iperf3 -t 1, 100 pings, 100 leases, 10 puts' },
    {
      name: 'ipv6', kind: 'bool',
      help: 'dual-stack labs (underlay 2001:db8::/64, EnableIPv6 with fd00:10:244::/48): each data path also over IPv6 (ping, TCP 1 and 4 streams, CPU per GB; no UDP), ' +
        'as ratios to the same path\'s IPv4 figures of the same run; a path that carries no IPv6 says why. Not a partial flag: alone it is a full run',
    },
    { name: 'reps', kind: 'int', min: 1, max: 20, help: 'repetitions per data path; the median is reported (default 3, quick 1)' },
    { name: 'seconds', kind: 'int', min: 1, max: 5, help: 'iperf3 -t of each run (default 5, quick 1)' },
    { name: 'paths', kind: 'string', help: `data paths to measure, or none (default all: ${DATA_PATHS.map((p) => p.id).join(',')})` },
    { name: 'leases', kind: 'int', min: 1, max: MAX_LEASES, help: 'remote leases written at once in the scale run (default 10000, quick 100)' },
    { name: 'puts', kind: 'int', min: 1, max: MAX_PUTS, help: 'single lease puts timed to their routes (default 50, quick 10)' },
    { name: 'scale-hosts', kind: 'int', min: 1, max: 3, help: 'hosts running weftd in the scale run (default 3; 1 shows what one agent alone achieves on this machine)' },
    { name: 'no-scale', kind: 'bool', help: 'skip the control-plane scale run' },
    { name: 'out', kind: 'string', help: `directory for latest.json, latest.md, throughput.svg and control-plane.svg (default ${DEFAULT_OUT} for a full run with the defaults, ${PARTIAL_OUT} when any other flag above makes it quick or partial)` },
  ],
  footer: 'Needs root, iperf3, etcd-server, iproute2, iputils-ping and containernetworking-plugins; the wireguard-userspace path wireguard-go (scripts/setup.sh --wireguard), else it is reported unavailable.',
};

export const benchCommand: Command = { flags: FLAGS, run: (p) => runBench(p, p.argv) };

const REQUIRED: ReadonlyArray<[string, string]> = [
  ['/usr/bin/iperf3', 'apt-get install iperf3'],
  ['/usr/bin/etcd', 'apt-get install etcd-server'],
  ['/usr/sbin/ip', 'apt-get install iproute2'],
  ['/usr/bin/ping', 'apt-get install iputils-ping'],
  ['/usr/lib/cni/bridge', 'apt-get install containernetworking-plugins'],
  ['/usr/lib/cni/host-local', 'apt-get install containernetworking-plugins'],
];

async function runBench(a: ParsedFlags, argv: readonly string[]): Promise<number> {
  if (a.positional.length) throw new UsageError(`unexpected argument ${JSON.stringify(a.positional[0])}; usage: ${FLAGS.usage}`);
  const missing = REQUIRED.filter(([p]) => !existsSync(p));
  if (process.getuid?.() !== 0 || missing.length) {
    process.stderr.write('weft bench cannot start; missing:\n' +
      (process.getuid?.() !== 0 ? '  root privileges (network namespaces, netlink): run it as root\n' : '') +
      missing.map(([p, how]) => `  ${p}: ${how}\n`).join(''));
    return 1;
  }
  const quick = a.values.quick === true;
  const v = (k: string, full: number, q: number) => (a.values[k] === undefined ? (quick ? q : full) : Number(a.values[k]));
  const settings: BenchSettings = {
    reps: v('reps', 3, 1),
    ipv6: a.values.ipv6 === true,
    seconds: v('seconds', 5, 1),
    streams: 4,
    udpLength: 64,
    udpBitrate: '0',
    udpLargeLength: 1400,
    pings: quick ? 100 : 1000,
    pingIntervalMs: 2,
    leases: v('leases', 10_000, 100),
    puts: v('puts', 50, 10),
    scaleHosts: a.values['scale-hosts'] === undefined ? 3 : Number(a.values['scale-hosts']),
  };
  const paths = selectPaths(a.values.paths as string | undefined);
  const outDir = resolve(String(a.values.out ?? defaultOut(a)));
  mkdirSync(outDir, { recursive: true });

  const started = Date.now();
  const machine = describeMachine();
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s`;
  say(`weft bench${quick ? ' --quick' : ''}: ${paths.length} data paths${settings.ipv6 ? ' (IPv4 and IPv6, dual-stack labs)' : ''} x ${settings.reps} reps, iperf3 -t ${settings.seconds}; ` +
    `${machine.nproc} CPUs (${machine.cpuModel}), Linux ${machine.kernel}`);
  const loadStart = loadavg()[0]!;
  if (loadStart > machine.nproc / 2) {
    say(`note: load average ${loadStart.toFixed(2)} on ${machine.nproc} CPUs: other work is running here, the figures will be noisy`);
  }
  const probeStart = speedProbe();
  say(`speed probe: ${formatSpeedProbe(probeStart)} (best of 3; runs compare only where the probes are close)`);

  const reports: PathReport[] = [];
  for (const [i, path] of paths.entries()) {
    const tag = `[${i + 1}/${paths.length} ${path.id}]`;
    const step = (what: string) => say(`${elapsed()} ${tag} ${what}`);
    reports.push(await benchPath(path, settings, step));
  }
  addRatios(reports, settings, REFERENCE_PATHS);

  let controlPlane: BenchReport['controlPlane'];
  if (a.values['no-scale'] === true) {
    controlPlane = { status: 'skipped', reason: '--no-scale' };
  } else {
    const step = (what: string) => say(`${elapsed()} [control plane] ${what}`);
    const etcdDataRoot = scaleEtcdDataRoot();
    step(`building a ${settings.scaleHosts}-host lab (etcd's data on ${etcdDataRoot ? `tmpfs, ${etcdDataRoot}` : 'disk, in the lab directory'}); ${settings.leases} leases at once, then ${settings.puts} single puts`);
    try {
      const r = await withLab({ hosts: settings.scaleHosts, ...(etcdDataRoot ? { etcdDataRoot } : {}) }, (lab) =>
        runControlPlane(lab, { hosts: settings.scaleHosts, leases: settings.leases, puts: settings.puts, timeoutMs: quick ? 60_000 : 180_000 }, step));
      controlPlane = { status: 'ok', ...r, etcdData: etcdDataRoot ? 'tmpfs' : 'disk' };
    } catch (e) {
      step(`failed: ${(e as Error).message}`);
      controlPlane = { status: 'failed', reason: (e as Error).message };
    }
  }

  const probeEnd = speedProbe();
  say(`speed probe at the end: ${formatSpeedProbe(probeEnd)}`);
  const report: BenchReport = {
    tool: 'weft bench',
    version: packageVersion(),
    command: ['weft bench', ...argv].join(' '),
    quick,
    startedAt: new Date(started).toISOString(),
    durationSeconds: (Date.now() - started) / 1000,
    machine,
    loadAverage: { start: loadStart, end: loadavg()[0]! },
    speedProbe: { start: probeStart, end: probeEnd },
    settings,
    dataPaths: reports,
    controlPlane,
  };
  const md = toMarkdown(report);
  writeFileSync(join(outDir, 'latest.json'), toJson(report));
  writeFileSync(join(outDir, 'latest.md'), md);
  writeFileSync(join(outDir, 'throughput.svg'), toSvg(report));
  const charts = ['throughput.svg'];
  if (controlPlane.status === 'ok') {
    writeFileSync(join(outDir, 'control-plane.svg'), controlPlaneSvg(controlPlane));
    charts.push('control-plane.svg');
  }
  say(`\n${md}\nWrote ${join(outDir, 'latest.json')}, latest.md and ${charts.join(' and ')} (${elapsed().trim()}).`);
  return 0;
}

/** The tracked results for a full run with the defaults; elsewhere for a quick or partial one, so it never replaces what the README shows. */
export function defaultOut(a: ParsedFlags): string {
  return PARTIAL_FLAGS.some((k) => a.values[k] !== undefined && a.values[k] !== false) ? PARTIAL_OUT : DEFAULT_OUT;
}

/**
 * One data path: a fresh lab, its setup, a reachability check, the repetitions; never throws.
 * With --ipv6 a path whose agents refuse the dual-stack configuration (exit 2) is measured
 * again in a single-stack lab, so it keeps its IPv4 figures and its IPv6 row says why.
 */
async function benchPath(path: DataPath, s: BenchSettings, step: (what: string) => void): Promise<PathReport> {
  const r = await measurePath(path, s, s.ipv6, step);
  if (!s.ipv6 || r.status !== 'unavailable' || r.ipv6?.status === 'ok') return r;
  step('measuring IPv4 again in a single-stack lab');
  const r4 = await measurePath(path, s, false, step);
  // Unavailable single stack as well (e.g. kernel WireGuard without the module): not a matter of IPv6.
  const why = r4.status === 'ok' ? `dual stack (EnableIPv6): ${r.reason}` : `the path is ${r4.status}, single stack too: ${r4.reason}`;
  return { ...r4, ipv6: noIpv6('unavailable', why) };
}

/** A path's IPv6 report before its medians and ratios: ok with its endpoints, or why there are no (more) IPv6 figures. */
const ipv6Report = (status: Ipv6Report['status'], why: { reason: string } | { endpoints: string }, reps: Ipv6Report['reps'] = []): Ipv6Report =>
  ({ status, ...why, reps, median: {}, ratioToIpv4: {}, ratioToVxlan: {}, ratioToUnderlay: {} });
const noIpv6 = (status: Ipv6Report['status'], reason: string, reps?: Ipv6Report['reps']) => ipv6Report(status, { reason }, reps);

async function measurePath(path: DataPath, s: BenchSettings, dual: boolean, step: (what: string) => void): Promise<PathReport> {
  const base = { id: path.id, label: path.label, reps: [] as RepFigures[], median: {}, ratioToVxlan: {}, ratioToUnderlay: {} };
  const ms: MeasureSettings = {
    seconds: s.seconds, streams: s.streams, udpLength: s.udpLength, udpBitrate: s.udpBitrate, udpLargeLength: s.udpLargeLength, pings: s.pings, pingIntervalMs: s.pingIntervalMs,
  };
  step(`${path.label}: building the ${dual ? 'dual-stack ' : ''}lab`);
  // Kept when a later repetition fails: the JSON shows what was measured before.
  const reps: RepFigures[] = [];
  let v6: Ipv6Report | undefined;
  try {
    return await withLab(dual ? { ...path.lab, ipv6: true } : path.lab, async (lab) => {
      const ep = await path.setup(lab);
      step(`ready: ${ep.describe}`);
      await checkReachable(ep);
      const ep6 = dual ? await ipv6Endpoints(ep, step) : undefined;
      if (ep6 && 'status' in ep6) v6 = ep6;
      else if (ep6) v6 = ipv6Report('ok', { endpoints: ep6.describe });
      for (let r = 1; r <= s.reps; r++) {
        reps.push(await measureOnce(lab, ep, ms, (what) => step(`rep ${r}/${s.reps}: ${what}`)));
        if (!ep6 || 'status' in ep6 || v6?.status !== 'ok') continue;
        try {
          v6.reps.push(await measureTcpPing(lab, ep6, ms, (what) => step(`rep ${r}/${s.reps} IPv6: ${what}`)));
        } catch (e) {
          step(`IPv6 FAILED: ${(e as Error).message.split('\n')[0]}`);
          v6 = noIpv6('failed', `rep ${r}: ${(e as Error).message}`, v6.reps);
        }
      }
      step('removing the lab');
      if (v6?.status === 'ok') v6.median = medianFigures(v6.reps, ipv6Metrics(s));
      const large = largeUdpLength(s.udpLargeLength, ep.mtu);
      return {
        ...base, status: 'ok' as const, endpoints: ep.describe, ...(large < s.udpLargeLength ? { udpLargeLength: large } : {}),
        reps, median: medianFigures(reps, metrics(s)), ...(v6 ? { ipv6: v6 } : {}),
      };
    });
  } catch (e) {
    const unavailable = e instanceof PathUnavailableError;
    const status = unavailable ? 'unavailable' : 'failed';
    const reason = (e as Error).message;
    step(`${unavailable ? 'unavailable' : 'FAILED'}: ${reason.split('\n')[0]}`);
    // The IPv6 row of a path that did not run says so too (with the IPv6 repetitions measured before, if any).
    const ipv6 = dual ? { ipv6: v6 && v6.status !== 'ok' ? v6 : noIpv6(status, `the path ${status}: ${reason}`, v6?.reps) } : {};
    return { ...base, status, reason, reps, ...ipv6 };
  }
}

/** The path's IPv6 endpoints, reachable; or why it has none (the path says it carries no IPv6, or IPv6 pings get no reply). */
async function ipv6Endpoints(ep: PathEndpoints, step: (what: string) => void): Promise<PathEndpoints | Ipv6Report> {
  if (!ep.ipv6) return noIpv6('unavailable', 'the path has no IPv6 endpoints in a dual-stack lab');
  if ('unavailable' in ep.ipv6) {
    step(`IPv6 unavailable: ${ep.ipv6.unavailable}`);
    return noIpv6('unavailable', ep.ipv6.unavailable);
  }
  const ep6: PathEndpoints = { ...ep, dstIp: ep.ipv6.dstIp, describe: ep.ipv6.describe };
  delete ep6.ipv6;
  try {
    await checkReachable(ep6);
  } catch (e) {
    step(`IPv6 FAILED: ${(e as Error).message.split('\n')[0]}`);
    return noIpv6('failed', (e as Error).message);
  }
  step(`IPv6: ${ep6.describe}`);
  return ep6;
}

function selectPaths(list: string | undefined): DataPath[] {
  if (list === undefined) return [...DATA_PATHS];
  if (list === 'none') return [];
  const ids = list.split(',').map((x) => x.trim()).filter(Boolean);
  const out: DataPath[] = [];
  for (const id of ids) {
    const p = DATA_PATHS.find((x) => x.id === id);
    if (!p) throw new UsageError(`invalid --paths ${JSON.stringify(list)}: no data path ${JSON.stringify(id)} (known: ${DATA_PATHS.map((x) => x.id).join(', ')})`);
    out.push(p);
  }
  return out;
}

function describeMachine(): Machine {
  let cpuModel = 'unknown';
  try {
    cpuModel = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpuModel;
  } catch { /* not Linux procfs */ }
  let iperf3 = 'iperf3';
  try {
    iperf3 = execFileSync('iperf3', ['--version'], { encoding: 'utf8' }).split('\n')[0]!.replace(/\s*\(.*$/, '').trim();
  } catch { /* preflight checked it exists */ }
  return { nproc: availableParallelism(), cpuModel, kernel: release(), memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, iperf3 };
}

function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}
