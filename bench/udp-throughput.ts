// One TCP stream container -> container across two lab hosts, through kernel
// VXLAN, the udp backend's native engine and its dgram engine, measured in one
// run on the same lab kind (a fresh 2-host lab per mode, so no device or route
// of one mode steers the next).
//   sudo node dist/bench/udp-throughput.js [--seconds 5] [--repeat 1]
// Prints one JSON line per measurement and a summary with ratios to VXLAN.
import { Lab } from '../lab/lab.js';
import { putNetworkConfig, startAgent, waitFor, waitReady } from '../lab/agent.js';

type Mode = 'vxlan' | 'native' | 'dgram';
const MODES: Mode[] = ['vxlan', 'native', 'dgram'];

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : def;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number`);
  return v;
}

async function measure(mode: Mode, seconds: number): Promise<{ mbps: number; retransmits: number; mtu: number }> {
  const lab = await Lab.create({ hosts: 2 });
  try {
    const backend = mode === 'vxlan' ? { Type: 'vxlan', VNI: 1, Port: 8472 } : { Type: 'udp', Engine: mode };
    await putNetworkConfig(lab, { Network: '10.244.0.0/16', SubnetLen: 24, Backend: backend });
    const agents = lab.hosts.map((h) => startAgent(lab, h, ['--log-level', 'info']));
    const ready = [];
    for (const a of agents) ready.push(await waitReady(lab, a));
    const [c1, c2] = [
      await lab.addContainer(lab.host(1), { bridge: 'weft0', subnet: ready[0]!.subnet, gateway: ready[0]!.gateway, mtu: ready[0]!.mtu }),
      await lab.addContainer(lab.host(2), { bridge: 'weft0', subnet: ready[1]!.subnet, gateway: ready[1]!.gateway, mtu: ready[1]!.mtu }),
    ];
    const srv = lab.spawnIn(c2!.ns, 'iperf3', ['-s', '-1', '-B', c2!.ip, '--forceflush'], { logName: `iperf3-${mode}` });
    await waitFor('iperf3 server', 5000, () => lab.readLog(srv).includes('listening'));
    const r = await lab.execIn(c1!.ns, 'iperf3', ['-c', c2!.ip, '-t', String(seconds), '-J'], { timeoutMs: (seconds + 20) * 1000 });
    if (r.code !== 0) throw new Error(`iperf3 (${mode}) failed: ${r.stdout.slice(-1000)} ${r.stderr}`);
    const j = JSON.parse(r.stdout);
    return { mbps: j.end.sum_received.bits_per_second / 1e6, retransmits: j.end.sum_sent.retransmits, mtu: ready[0]!.mtu };
  } finally {
    await lab.destroy();
  }
}

async function main(): Promise<void> {
  const seconds = arg('seconds', 5);
  const repeat = arg('repeat', 1);
  if (seconds > 5) throw new Error('--seconds is at most 5 (bounded lab loads)');
  const results = new Map<Mode, number[]>();
  for (let k = 0; k < repeat; k++) {
    for (const mode of MODES) {
      const m = await measure(mode, seconds);
      console.log(JSON.stringify({ mode, run: k + 1, seconds, ...m, mbps: Math.round(m.mbps) }));
      results.set(mode, [...(results.get(mode) ?? []), m.mbps]);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const vx = median(results.get('vxlan')!);
  console.log('\nmode     Mbit/s (median)  ratio to vxlan');
  for (const mode of MODES) {
    const v = median(results.get(mode)!);
    console.log(`${mode.padEnd(8)} ${v.toFixed(0).padStart(15)}  ${(v / vx).toFixed(2)}`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
