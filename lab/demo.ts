// `weft lab`: a whole weft cluster on this machine, in network namespaces:
// an etcd host, N hosts running weftd, containers attached through CNI; a
// ping matrix with RTTs; then everything is removed (unless --keep).
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError, type Command, type FlagSet, type ParsedFlags } from '../lib/flags.js';
import { which } from '../lib/which.js';
import { attachContainer, hostSubnetFile, putNetworkConfig, startAgents, type AgentReady } from './agent.js';
import { Lab, type LabHost, type LabState } from './lab.js';
import { iperf, type IperfTcpResult } from './iperf.js';
import { pingMatrix, type PingTarget } from './ping.js';
import { createRuntime, runtimePreflight, type ContainerRuntime, type RuntimeKind } from './runtime/index.js';

const FLAGS: FlagSet = {
  command: 'weft lab',
  usage: 'weft lab [--hosts N] [--containers N] [--runtime netns|docker|podman] [--backend vxlan|udp|host-gw|wireguard] [--direct-routing] [--fallback] [--udp-engine native|dgram] [--topology one-segment|two-segments] [--network CIDR] [--ipv6] [--keep] | weft lab down',
  positional: true,
  flags: [
    { name: 'hosts', kind: 'int', def: 3, min: 1, max: 20, help: 'hosts running weftd' },
    { name: 'containers', kind: 'int', def: 2, min: 1, max: 8, help: 'containers per host' },
    { name: 'runtime', kind: 'string', def: 'netns', choices: ['netns', 'docker', 'podman'], help: 'what the containers are: namespaces attached by the CNI bridge plugin, or real Docker (dockerd per host, docker0 from weft docker-opts) or Podman (weft\'s CNI plugin as flannel) containers of a busybox image built here' },
    { name: 'backend', kind: 'string', def: 'vxlan', choices: ['vxlan', 'udp', 'host-gw', 'wireguard'], help: 'data path between hosts: kernel VXLAN, the userspace UDP forwarder, host-gw routes (no encapsulation; same segment only), or WireGuard (kernel or wireguard-go)' },
    { name: 'direct-routing', kind: 'bool', help: 'vxlan: Backend.DirectRouting, a direct route to every peer on the same segment' },
    { name: 'fallback', kind: 'bool', help: 'vxlan: Backend.Fallback {"Type": "udp"}, the udp path for each peer VXLAN does not reach' },
    { name: 'udp-engine', kind: 'string', def: 'native', choices: ['native', 'dgram'], help: 'forwarder engine for --backend udp' },
    { name: 'topology', kind: 'string', def: 'one-segment', choices: ['one-segment', 'two-segments'], help: 'one underlay segment, or two (192.0.2.0/24 and 198.51.100.0/24, half the hosts each) joined by a router namespace; etcd on the first' },
    { name: 'network', kind: 'string', def: '10.244.0.0/16', help: 'the overlay network (Network in the config)' },
    { name: 'ipv6', kind: 'bool', help: 'dual stack: an IPv6 underlay too (2001:db8::/64), EnableIPv6 with IPv6Network fd00:10:244::/48, and a ping matrix over IPv6 as well (vxlan and host-gw, --runtime netns)' },
    { name: 'keep', kind: 'bool', help: 'leave the lab up and print how to enter it; remove it with: weft lab down' },
  ],
  footer: 'Needs root and the Debian packages etcd-server, iproute2, iputils-ping, iperf3 and containernetworking-plugins; --runtime docker also docker.io and busybox-static, --runtime podman podman and busybox-static (bash scripts/setup.sh --runtimes installs them).',
};

export const labCommand: Command = { flags: FLAGS, run: (p) => runLab(p) };

/** Where kept labs are recorded, for `weft lab down` (WEFT_LAB_STATE_DIR overrides, for tests). */
export const STATE_DIR = process.env.WEFT_LAB_STATE_DIR || '/run/weft-lab';

interface Missing { what: string; how: string }

/** Everything weft lab needs that this machine lacks, each with how to get it. */
export function preflight(env: { uid: number | undefined; path: string; cniDir: string } = { uid: process.getuid?.(), path: process.env.PATH ?? '', cniDir: '/usr/lib/cni' }): Missing[] {
  const out: Missing[] = [];
  if (env.uid !== 0) out.push({ what: 'root privileges (network namespaces, netlink)', how: 'run it as root, e.g. sudo bash scripts/demo.sh' });
  const tools: Array<[string, string]> = [
    ['etcd', 'apt-get install etcd-server'],
    ['ip', 'apt-get install iproute2'],
    ['bridge', 'apt-get install iproute2'],
    ['ping', 'apt-get install iputils-ping'],
    ['iperf3', 'apt-get install iperf3'],
  ];
  for (const [tool, how] of tools) if (!which(tool, env.path)) out.push({ what: `${tool} (not on PATH)`, how });
  for (const plugin of ['bridge', 'host-local']) {
    if (!existsSync(join(env.cniDir, plugin))) out.push({ what: `CNI plugin ${join(env.cniDir, plugin)}`, how: 'apt-get install containernetworking-plugins' });
  }
  return out;
}

class Progress {
  private n = 0;
  constructor(private readonly total: number) {}
  async step<T>(what: string, fn: (tick: (detail: string) => void) => Promise<T>): Promise<T> {
    this.n++;
    const start = Date.now();
    const head = `[${this.n}/${this.total}] ${what}`;
    const tty = process.stdout.isTTY;
    if (tty) process.stdout.write(`${head} ...`);
    const tick = (detail: string) => {
      if (tty) process.stdout.write(`\r${head} ... ${detail}   `);
    };
    try {
      const r = await fn(tick);
      const line = `${head} ... done (${((Date.now() - start) / 1000).toFixed(1)} s)`;
      process.stdout.write(tty ? `\r${line}          \n` : `${line}\n`);
      return r;
    } catch (e) {
      process.stdout.write(tty ? ` failed\n` : `${head} ... failed\n`);
      throw e;
    }
  }
}

function matrixTable(containers: ReadonlyArray<{ name: string }>, rtt: Map<string, number | undefined>): string {
  const names = containers.map((c) => c.name);
  const w = Math.max(8, ...names.map((n) => n.length + 1));
  const lines = [''.padEnd(w) + names.map((n) => n.padStart(w)).join('')];
  for (const from of names) {
    let row = from.padEnd(w);
    for (const to of names) {
      if (from === to) row += '-'.padStart(w);
      else {
        const v = rtt.get(`${from}>${to}`);
        row += (v === undefined ? 'FAIL' : `${v.toFixed(2)}ms`).padStart(w);
      }
    }
    lines.push(row);
  }
  return lines.join('\n');
}

interface Container extends PingTarget { name: string; ip: string; host: LabHost }

/** Attaches (netns) or runs (docker, podman) perHost containers on every host. */
async function makeContainers(l: Lab, rt: ContainerRuntime | undefined, ready: AgentReady[], perHost: number, tick: (d: string) => void): Promise<Container[]> {
  const out: Container[] = [];
  for (const [i, h] of l.hosts.entries()) {
    for (let j = 0; j < perHost; j++) {
      out.push(rt ? await rt.run(h) : await attachContainer(l, h, ready[i]!));
      tick(`${out.length}/${l.hosts.length * perHost}`);
    }
  }
  return out;
}

const RUNTIME_WHAT: Record<RuntimeKind, string> = {
  docker: 'dockerd (weft docker-opts: --bip, --mtu, --ip-masq=false; FORWARD policy DROP)',
  podman: 'podman (weft\'s CNI plugin as flannel, from the conflist weftd wrote)',
};

async function runLab(args: ParsedFlags): Promise<number> {
  if (args.positional[0] === 'down') return labDown();
  if (args.positional.length) throw new UsageError(`unexpected argument ${JSON.stringify(args.positional[0])}; usage: ${FLAGS.usage}`);
  for (const o of ['direct-routing', 'fallback']) if (args.values[o] === true && args.values.backend !== 'vxlan') throw new UsageError(`--${o} is a vxlan option, not one of --backend ${args.values.backend}`);
  const kind = args.values.runtime as 'netns' | RuntimeKind;
  const ipv6 = args.values.ipv6 === true;
  if (ipv6 && args.values.backend !== 'vxlan' && args.values.backend !== 'host-gw') throw new UsageError(`--ipv6 runs on --backend vxlan or host-gw, not ${args.values.backend}`);
  if (ipv6 && args.values.topology !== 'one-segment') throw new UsageError('--ipv6 builds a one-segment lab; drop --topology two-segments');
  if (ipv6 && kind !== 'netns') throw new UsageError(`--ipv6 attaches containers by CNI in namespaces; drop --runtime ${kind}`);
  const missing = [...preflight(), ...(kind === 'netns' ? [] : runtimePreflight(kind, (t) => which(t)))];
  if (missing.length) {
    process.stderr.write('weft lab cannot start; missing:\n' + missing.map((m) => `  ${m.what}: ${m.how}\n`).join('') + 'Nothing was created.\n');
    return 1;
  }
  const hosts = Number(args.values.hosts);
  const perHost = Number(args.values.containers);
  const keep = args.values.keep === true;
  // iperf3 runs in namespaces the lab made; the runtimes' containers are measured by weft bench instead.
  const measure = hosts >= 2 && kind === 'netns';
  const progress = new Progress(5 + (measure ? 1 : 0) + (kind === 'netns' ? 0 : 1));
  let lab: Lab | undefined;
  const started = Date.now();
  try {
    const topology = args.values.topology as 'one-segment' | 'two-segments';
    lab = await progress.step(`creating the lab: ${topology === 'two-segments' ? 'two underlay segments and a router' : 'underlay'}, etcd host and ${hosts} hosts`, () => Lab.create({ hosts, outsideHost: false, topology, ipv6 }));
    const l = lab;
    process.stdout.write(`      lab ${l.id}: namespaces ${l.id}-*, files and logs in ${l.dir}\n`);
    const rt = kind === 'netns' ? undefined : createRuntime(l, kind);
    await rt?.prepare();
    const wg = args.values.backend === 'wireguard';
    const backend =
      args.values.backend === 'udp' ? { Type: 'udp', Engine: args.values['udp-engine'] } :
      args.values.backend === 'host-gw' ? { Type: 'host-gw' } :
      wg ? { Type: 'wireguard' } :
      { Type: 'vxlan', ...(args.values['direct-routing'] === true ? { DirectRouting: true } : {}), ...(args.values.fallback === true ? { Fallback: { Type: 'udp', Port: 8285 } } : {}) };
    await putNetworkConfig(l, { Network: args.values.network, ...(ipv6 ? { EnableIPv6: true, IPv6Network: 'fd00:10:244::/48' } : {}), Backend: backend });
    const agents = await progress.step(`starting weftd on ${hosts} hosts${rt ? ` (${rt.weftdArgs(l.hosts[0]!).slice(0, 3).join(' ')} ...)` : ''}`, async (tick) =>
      startAgents(l, (h) => ['--log-level', 'info', ...(wg ? ['--wireguard-key-file', join(h.dir, 'wireguard.key')] : []), ...(rt ? rt.weftdArgs(h) : [])], (n) => tick(`${n}/${hosts} ready`)),
    );
    const ready = agents.map((u) => u.ready);
    if (rt) await progress.step(`starting ${RUNTIME_WHAT[rt.kind]} on ${hosts} hosts`, () => Promise.all(l.hosts.map((h) => rt.startHost(h))).then(() => undefined));
    const how = rt ? `${rt.kind} run, image weft-lab/busybox` : 'CNI (bridge + host-local)';
    const containers = await progress.step(`starting ${hosts * perHost} containers: ${how}`, (tick) => makeContainers(l, rt, ready, perHost, tick));
    const v6 = l.containers.map((c) => ({ name: c.name, ns: c.ns, ip: c.ipv6 ?? '' }));
    const pairs = await progress.step(`pinging every container from every other (${containers.length * (containers.length - 1)} pairs${rt ? `, ${rt.kind} exec ping` : ''}${ipv6 ? ', over IPv4 and over IPv6' : ''})`, async () => [
      ...(await pingMatrix(l, containers, { count: 3, intervalMs: 100, timeoutS: 1 })),
      ...(ipv6 ? (await pingMatrix(l, v6, { count: 3, intervalMs: 100, timeoutS: 1 })).map((p) => ({ ...p, from: `${p.from}/6` })) : []),
    ]);
    let throughput: { underlay: number; overlay: number } | undefined;
    if (measure) {
      const [h1, h2] = [l.hosts[0]!, l.hosts[1]!];
      const c1 = l.containers.find((c) => c.host === h1)!;
      const c2 = l.containers.find((c) => c.host === h2)!;
      throughput = await progress.step('measuring TCP throughput with iperf3, 2 s each: underlay h1->h2, overlay ' + `${c1.name}->${c2.name}`, async () => {
        const underlay = await iperf(l, { fromNs: h1.ns, toNs: h2.ns, dstIp: h2.underlayIp, seconds: 2 });
        const overlay = await iperf(l, { fromNs: c1.ns, toNs: c2.ns, dstIp: c2.ip, seconds: 2 });
        return { underlay: (underlay as IperfTcpResult).bitsPerSecond, overlay: (overlay as IperfTcpResult).bitsPerSecond };
      });
    }
    const rtt = new Map<string, number | undefined>();
    for (const p of pairs) if (!p.from.endsWith('/6')) rtt.set(`${p.from}>${p.to}`, p.result.received > 0 ? p.result.rttAvgMs : undefined);
    const ok = pairs.filter((p) => p.result.received === p.result.sent && p.result.sent > 0);
    process.stdout.write('\nHosts:\n');
    const bridge = kind === 'docker' ? 'docker0' : kind === 'podman' ? 'cni0' : 'weft0';
    for (const [i, h] of l.hosts.entries()) {
      const r = ready[i]!;
      process.stdout.write(`  ${h.name}  underlay ${h.underlayIp}${h.underlayIpv6 ? ` ${h.underlayIpv6}` : ''}${l.router ? ` (segment ${h.segment})` : ''}  subnet ${r.subnet}${r.ipv6 ? ` ${r.ipv6.subnet}` : ''}  bridge ${bridge} ${r.gateway}  MTU ${r.mtu}\n`);
    }
    process.stdout.write(`\nContainers (${rt ? `${rt.kind}, image weft-lab/busybox` : 'network namespaces'}):\n`);
    for (const c of containers) process.stdout.write(`  ${c.name.padEnd(8)} on ${c.host.name}  ${c.ip}\n`);
    process.stdout.write(`\nPing matrix (average RTT of 3 pings, rows ping columns${rt ? `, from inside the containers` : ''}${ipv6 ? ', IPv4' : ''}):\n${matrixTable(containers, rtt)}\n`);
    if (ipv6) {
      const rtt6 = new Map<string, number | undefined>();
      for (const p of pairs) if (p.from.endsWith('/6')) rtt6.set(`${p.from.slice(0, -2)}>${p.to}`, p.result.received > 0 ? p.result.rttAvgMs : undefined);
      process.stdout.write(`\nPing matrix, IPv6 (ping -6 to each container's IPv6 address):\n${matrixTable(containers, rtt6)}\n`);
    }
    if (throughput) {
      const g = (bps: number) => `${(bps / 1e9).toFixed(2)} Gbit/s`;
      process.stdout.write(
        `\nThroughput (one TCP stream, 2 s): underlay ${g(throughput.underlay)}, overlay ${g(throughput.overlay)} ` +
          `(${(throughput.overlay / throughput.underlay).toFixed(2)}x the underlay). For every mode side by side: weft bench\n`,
      );
    }
    const rtts = ok.map((p) => p.result.rttAvgMs).sort((a, b) => a - b);
    const median = rtts.length ? rtts[Math.floor(rtts.length / 2)]! : NaN;
    process.stdout.write(
      `\nSummary: ${hosts} hosts, ${containers.length} ${rt ? `${rt.kind} ` : ''}containers, backend ${args.values.backend}${ipv6 ? ' dual stack' : ''}${args.values.backend === 'udp' ? ` (${args.values['udp-engine']} engine)` : args.values['direct-routing'] === true ? ' with DirectRouting' : ''}${args.values.fallback === true ? ' with the udp Fallback' : ''}${l.router ? ', two segments' : ''}: ` +
        `${ok.length}/${pairs.length} pairs reachable, median RTT ${median.toFixed(2)} ms, ` +
        `${((Date.now() - started) / 1000).toFixed(1)} s\n`,
    );
    if (keep) {
      l.detach();
      mkdirSync(STATE_DIR, { recursive: true });
      writeFileSync(join(STATE_DIR, `${l.id}.json`), JSON.stringify(l.state(), null, 2));
      process.stdout.write(keptHelp(l, rt, containers[0]!, args, agents[0]!.agent.proc.pid));
      lab = undefined;
    }
    return ok.length === pairs.length ? 0 : 1;
  } finally {
    if (lab) await progress.step('removing the lab (containers, daemons, cgroups, namespaces, files)', () => lab!.destroy()).catch((e) => {
      process.stderr.write(`weft lab: cleanup: ${(e as Error).message}\n`);
    });
  }
}

function keptHelp(l: Lab, rt: ContainerRuntime | undefined, c: Container, args: ParsedFlags, weftdPid: number | undefined): string {
  const h = l.hosts[0]!;
  const backend = args.values.backend;
  return (
    `\nThe lab ${l.id} is left up.\n` +
    (rt
      ? `  ${rt.kind} on ${h.name}:      ${rt.cliHint(h)} ps\n  enter a container:  ${rt.cliHint(c.host)} exec -it ${c.name} sh\n`
      : `  enter a container:  ip netns exec ${c.ns} bash\n`) +
    `  enter a host:       ip netns exec ${h.ns} bash\n` +
    (backend === 'udp'
      ? `  see its routes:     ip netns exec ${h.ns} ip route show dev weft-tun\n`
      : backend === 'wireguard'
        // A lab host has its own /run (wireguard-go's socket is there): enter weftd's mount namespace too.
        ? `  see its WireGuard peers: nsenter -t ${weftdPid} -m -n wg show\n`
        : backend === 'host-gw' || args.values['direct-routing'] === true
        ? `  see weft's routes:  ip netns exec ${h.ns} ip route show proto 87\n`
        : `  see its VXLAN peers: ip netns exec ${h.ns} bridge fdb show dev weft.1\n`) +
    `  peer paths:         ip netns exec ${h.ns} node dist/cmd/weft.js status --etcd-endpoints ${l.etcd!.labEndpoints.join(',')} --subnet-file ${hostSubnetFile(h)}\n` +
    `  agent logs:         ${join(l.dir, 'logs')}\n` +
    `  remove it:          node dist/cmd/weft.js lab down\n`
  );
}

/** Removes every lab left up with --keep. */
export async function labDown(): Promise<number> {
  if (!existsSync(STATE_DIR)) {
    process.stdout.write('no kept labs\n');
    return 0;
  }
  const files = readdirSync(STATE_DIR).filter((f) => f.endsWith('.json'));
  if (!files.length) process.stdout.write('no kept labs\n');
  for (const f of files) {
    const st = JSON.parse(readFileSync(join(STATE_DIR, f), 'utf8')) as LabState;
    await Lab.removeDetached(st);
    rmSync(join(STATE_DIR, f), { force: true });
    process.stdout.write(`removed lab ${st.id} (${st.namespaces.length} namespaces)\n`);
  }
  return 0;
}
