// `weft chaos`: the chaos suite by hand, for as long as you like (`npm run chaos -- --seconds
// 300 --seed N`). The CI test (test/integration/lab/chaos.test.ts) runs 20 s of it.
import { writeFileSync } from 'node:fs';
import { UsageError, type Command, type FlagSet, type ParsedFlags } from '../lib/flags.js';
import { FAULT_KINDS, type FaultKind } from './chaos-schedule.js';
import { formatReport, verdicts } from './chaos-report.js';
import { runChaos } from './chaos.js';
import { which } from '../lib/which.js';
import { preflight } from './demo.js';

const FLAGS: FlagSet = {
  command: 'weft chaos',
  about: 'Builds a lab (etcd with 3 members; h1-h3 on vxlan, h4-h5 on udp; one container per host pinging every other ' +
    'container of its network every 20 ms), applies a seeded random schedule of faults (at least one every 2 s), then ' +
    'checks within --settle-seconds of the last fault that every pair pings, the leases are distinct, each host\'s kernel holds ' +
    'exactly the live leases, no weftd exited by itself and none grew by more than 20 MiB. Prints the report; exit 1 when a check fails.',
  flags: [
    { name: 'seconds', kind: 'int', def: 60, min: 5, max: 3600, help: 'how long faults are applied' },
    { name: 'seed', kind: 'int', min: 0, max: 0xffffffff, help: 'seed of the fault schedule (default: random; the report prints it, to replay a run)' },
    { name: 'faults', kind: 'list', help: `fault kinds to draw from, comma-separated (default: all): ${FAULT_KINDS.join(', ')}`,
      check: (v) => v.split(',').map((s) => s.trim()).filter((s) => s && !(FAULT_KINDS as readonly string[]).includes(s)).map((s) => `unknown fault kind ${s}`)[0] },
    { name: 'settle-seconds', kind: 'int', def: 5, min: 1, max: 120, help: 'how long after the last fault the cluster has to be whole again' },
    { name: 'json', kind: 'string', help: 'also write the whole result (every reply time, fault and process) to this file' },
  ],
  footer: 'Needs root and what weft lab needs (etcd-server and etcd-client (etcdctl), iproute2, iputils-ping, containernetworking-plugins).',
};

export const chaosCommand: Command = { flags: FLAGS, run: (p) => runChaosCommand(p) };

async function runChaosCommand(args: ParsedFlags): Promise<number> {
  const missing = preflight().filter((m) => !m.what.startsWith('iperf3'));
  if (!which('etcdctl')) missing.push({ what: 'etcdctl (not on PATH)', how: 'apt-get install etcd-client' });
  if (missing.length) {
    process.stderr.write('weft chaos cannot start; missing:\n' + missing.map((m) => `  ${m.what}: ${m.how}\n`).join(''));
    return 1;
  }
  if (args.positional.length) throw new UsageError(`unexpected argument ${JSON.stringify(args.positional[0])}`);
  const seed = args.values.seed === undefined ? Math.floor(Math.random() * 0xffffffff) : Number(args.values.seed);
  const result = await runChaos({
    seconds: Number(args.values.seconds),
    seed,
    settleMs: Number(args.values['settle-seconds']) * 1000,
    ...(args.values.faults ? { kinds: args.values.faults as FaultKind[] } : {}),
    log: (l) => process.stdout.write(`${l}\n`),
  });
  process.stdout.write(`\n${formatReport(result)}\n`);
  if (args.values.json) writeFileSync(String(args.values.json), JSON.stringify(result, null, 1));
  return verdicts(result).every((v) => v.ok) ? 0 : 1;
}
