// One TCP stream container -> container across two lab hosts, through kernel
// VXLAN, the udp backend's native engine with offloads (TSO/GSO/GRO, the
// default), the native engine without them (--udp-offload=false) and the dgram
// engine, measured in one run on the same lab kind (a fresh 2-host lab per
// measurement, so no device or route of one mode steers the next).
//   sudo node dist/bench/udp-throughput.js [--seconds 5] [--repeat 3] [--modes vxlan,native,...]
// Prints one JSON line per measurement (throughput, retransmits, TUN drops on
// both hosts, busy share of each CPU, the native engine's offload counters) and
// a table of medians with ratios to VXLAN and to dgram.
import { readFileSync } from 'node:fs';
import { Lab } from '../lab/lab.js';
import { attachContainer, logRecords, putNetworkConfig, waitFor, type LabAgent, startAgents } from '../lab/agent.js';

type Mode = 'vxlan' | 'native' | 'native-plain' | 'dgram';
const ALL: Mode[] = ['vxlan', 'native', 'native-plain', 'dgram'];

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : def;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number`);
  return v;
}

function modes(): Mode[] {
  const i = process.argv.indexOf('--modes');
  if (i < 0) return ALL;
  const m = (process.argv[i + 1] ?? '').split(',');
  for (const x of m) if (!(ALL as string[]).includes(x)) throw new Error(`--modes: ${JSON.stringify(x)} is not one of ${ALL.join(', ')}`);
  return m as Mode[];
}

/** Per CPU: [busy, total] jiffies from /proc/stat. */
function cpuTimes(): Array<[number, number]> {
  return readFileSync('/proc/stat', 'utf8')
    .split('\n')
    .filter((l) => /^cpu\d+ /.test(l))
    .map((l) => {
      const v = l.trim().split(/\s+/).slice(1).map(Number);
      const idle = v[3]! + v[4]!; // idle + iowait
      const total = v.slice(0, 8).reduce((a, b) => a + b, 0); // user..steal (guest is inside user)
      return [total - idle, total];
    });
}

interface Measurement {
  mbps: number;
  retransmits: number;
  mtu: number;
  /** Busy share of each CPU during the transfer, percent. */
  cpuBusy: number[];
  /** TX drops of the TUN device (packets the kernel could not queue for the engine), per host. */
  tunDrops?: number[];
  /** Offload counters of the sending host's and the receiving host's native engine. */
  offload?: { sender: Record<string, unknown>; receiver: Record<string, unknown> };
}

async function forwarderStats(lab: Lab, a: LabAgent): Promise<Record<string, any>> {
  const count = () => logRecords(lab, a).filter((r) => r.msg === 'stats').length;
  const before = count();
  process.kill(a.proc.pid!, 'SIGUSR1');
  await waitFor(`a stats line from ${a.host.name}`, 3000, () => count() > before);
  return logRecords(lab, a).filter((r) => r.msg === 'stats').at(-1)!.forwarder as Record<string, any>;
}

async function measure(mode: Mode, seconds: number): Promise<Measurement> {
  const lab = await Lab.create({ hosts: 2 });
  try {
    const backend = mode === 'vxlan' ? { Type: 'vxlan', VNI: 1, Port: 8472 } : { Type: 'udp', Engine: mode === 'dgram' ? 'dgram' : 'native' };
    await putNetworkConfig(lab, { Network: '10.244.0.0/16', SubnetLen: 24, Backend: backend });
    const extra = mode === 'native-plain' ? ['--udp-offload=false'] : [];
    const up = await startAgents(lab, () => ['--log-level', 'info', ...extra]);
    const agents = up.map((u) => u.agent);
    const ready = up.map((u) => u.ready);
    const [c1, c2] = [
      await attachContainer(lab, lab.host(1), ready[0]!),
      await attachContainer(lab, lab.host(2), ready[1]!),
    ];
    const srv = lab.spawnIn(c2!.ns, 'iperf3', ['-s', '-1', '-B', c2!.ip, '--forceflush'], { logName: `iperf3-${mode}` });
    await waitFor('iperf3 server', 5000, () => lab.readLog(srv).includes('listening'));
    const t0 = cpuTimes();
    const r = await lab.execIn(c1!.ns, 'iperf3', ['-c', c2!.ip, '-t', String(seconds), '-J'], { timeoutMs: (seconds + 20) * 1000 });
    const t1 = cpuTimes();
    if (r.code !== 0) throw new Error(`iperf3 (${mode}) failed: ${r.stdout.slice(-1000)} ${r.stderr}`);
    const j = JSON.parse(r.stdout);
    const m: Measurement = {
      mbps: j.end.sum_received.bits_per_second / 1e6,
      retransmits: j.end.sum_sent.retransmits,
      mtu: ready[0]!.mtu,
      cpuBusy: t1.map(([b, t], i) => Math.round((100 * (b - t0[i]![0])) / Math.max(1, t - t0[i]![1]))),
    };
    if (mode !== 'vxlan') {
      m.tunDrops = [];
      for (const h of lab.hosts) {
        const [link] = (await lab.ipJson(h.ns, ['-s', 'link', 'show', 'weft-tun'])) as any[];
        m.tunDrops.push(link?.stats64?.tx?.dropped ?? -1);
      }
    }
    if (mode === 'native' || mode === 'native-plain') {
      const [s, rcv] = [await forwarderStats(lab, agents[0]!), await forwarderStats(lab, agents[1]!)];
      m.offload = { sender: s.offload, receiver: rcv.offload };
    }
    return m;
  } finally {
    await lab.destroy();
  }
}

async function main(): Promise<void> {
  const seconds = arg('seconds', 5);
  const repeat = arg('repeat', 3);
  const which = modes();
  if (seconds > 5) throw new Error('--seconds is at most 5 (bounded lab loads)');
  const results = new Map<Mode, Measurement[]>();
  for (let k = 0; k < repeat; k++) {
    for (const mode of which) {
      const m = await measure(mode, seconds);
      console.log(JSON.stringify({ mode, run: k + 1, seconds, ...m, mbps: Math.round(m.mbps) }));
      results.set(mode, [...(results.get(mode) ?? []), m]);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const med = (mode: Mode) => (results.has(mode) ? median(results.get(mode)!.map((m) => m.mbps)) : NaN);
  const vx = med('vxlan');
  const dg = med('dgram');
  console.log(`\n1 TCP stream, iperf3 -t ${seconds}, ${repeat} run(s) per mode, medians`);
  console.log('| mode | Mbit/s | x vxlan | x dgram | retransmits | runs (Mbit/s) |');
  console.log('| --- | ---: | ---: | ---: | ---: | --- |');
  for (const mode of which) {
    const ms = results.get(mode)!;
    const v = med(mode);
    const rt = median(ms.map((m) => m.retransmits));
    const label = mode === 'native' ? 'udp native (offloads)' : mode === 'native-plain' ? 'udp native (--udp-offload=false)' : mode === 'dgram' ? 'udp dgram' : 'kernel vxlan';
    console.log(`| ${label} | ${v.toFixed(0)} | ${(v / vx).toFixed(2)} | ${(v / dg).toFixed(1)} | ${rt} | ${ms.map((m) => m.mbps.toFixed(0)).join(', ')} |`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
