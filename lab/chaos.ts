// The chaos suite's runner: a lab of 5 hosts (h1-h3 on vxlan in 10.244.0.0/16, h4-h5 on udp
// in 10.245.0.0/16 under their own etcd prefix), a 3-member etcd cluster, one container per
// host, and every container pinging every other container of its network every 20 ms. For
// `seconds` it applies the seeded fault plan (./chaos-schedule.ts), then watches for at most
// `settleMs` whether the cluster comes back whole (./chaos-check.ts), and returns what it saw;
// ./chaos-report.ts prints it, the test and `weft chaos` judge it. Like systemd's
// Restart=always, a weftd that exits without the schedule having killed it is started again
// after 1 s, and counted. The lab is always removed, also on failure.
import { readFileSync } from 'node:fs';
import { attachContainer, logRecords, PREFIX, putNetworkConfig, readSubnetEnv, restartAgent, startAgent, waitReady, type LabAgent } from './agent.js';
import { checkOwnLease, checkUdpHost, checkVxlanHost, etcdctl, leaseConflicts, liveLeases, readLeases, TUN_DEV, VXLAN_DEV, type ChaosNetwork } from './chaos-check.js';
import { garbageFor } from './chaos-garbage.js';
import { planFaults, type FaultKind, type PlannedFault } from './chaos-schedule.js';
import { Lab, UNDERLAY_GATEWAY, type LabContainer, type LabHost, type TrackedProcess } from './lab.js';
import { startPinger, type Pinger } from './ping.js';

export interface ChaosOptions {
  readonly seconds: number;
  readonly seed: number;
  /** Fault kinds to draw from; default all. */
  readonly kinds?: readonly FaultKind[];
  /** Default 20. */
  readonly pingIntervalMs?: number;
  /** How long after the last fault the cluster has to be whole again. Default 5000. */
  readonly settleMs?: number;
  /** Progress lines (setup, each fault as it is applied). */
  readonly log?: (line: string) => void;
}

export interface AppliedFault extends PlannedFault {
  /** When it really started and when it was undone, ms after the window's start. */
  readonly startedMs: number;
  endedMs: number;
  detail: string;
  error?: string;
}

export interface PairResult {
  readonly from: string;
  readonly to: string;
  readonly network: string;
  /** Reply arrival times, ms after the window's start (negative: before it). */
  readonly replies: readonly number[];
  readonly sent: number;
  readonly lost: number;
}

export interface AgentProcess {
  readonly host: string;
  readonly pid: number;
  /** ms after the window's start (negative: started before it). */
  readonly startedMs: number;
  /** VmRSS in KiB once ready, and at the end (undefined when it never got there). */
  baselineRssKiB?: number;
  endRssKiB?: number;
  exit?: { code: number | null; signal: string | null; atMs: number; bySchedule: boolean; logTail?: string };
}

export interface FinalCheck {
  /** ms after the end of the last fault when everything held, or undefined if it did not within settleMs. */
  convergedAfterMs: number | undefined;
  /** The problems at the last look (empty when converged). */
  problems: string[];
  /** Live leases per network at the last look. */
  leases: Record<string, string[]>;
}

export interface ChaosResult {
  readonly seed: number;
  readonly seconds: number;
  readonly pingIntervalMs: number;
  readonly settleMs: number;
  readonly topology: string;
  readonly faults: AppliedFault[];
  /** ms after the window's start when the last fault was undone (>= the window's end). */
  readonly lastFaultEndMs: number;
  readonly pairs: PairResult[];
  readonly processes: AgentProcess[];
  readonly final: FinalCheck;
  /** Garbage keys the suite left in etcd on purpose (invalid leases). */
  readonly garbageLeft: string[];
  readonly labDir: string;
}

interface Agent {
  readonly host: LabHost;
  readonly net: ChaosNetwork;
  readonly lab: LabAgent;
  /** The process the schedule is killing right now (its exit is expected). */
  killing?: TrackedProcess;
  down: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const UDP_PREFIX = '/weft-chaos/udp';

function rssKiB(pid: number): number | undefined {
  try { return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]); } catch { return undefined; }
}

export async function runChaos(o: ChaosOptions): Promise<ChaosResult> {
  const say = o.log ?? (() => {});
  const pingIntervalMs = o.pingIntervalMs ?? 20;
  const settleMs = o.settleMs ?? 5000;
  const lab = await Lab.create({ hosts: 5, etcdMembers: 3 });
  const pingers: Array<{ from: LabContainer; to: LabContainer; net: string; p: Pinger }> = [];
  let stopping = false;
  let sampler: NodeJS.Timeout | undefined;
  try {
    say(`lab ${lab.id}: 5 hosts, etcd with 3 members; logs in ${lab.dir}/logs`);
    const nets: ChaosNetwork[] = [
      { name: 'vxlan', prefix: PREFIX, network: '10.244.0.0/16', hosts: lab.hosts.slice(0, 3) },
      { name: 'udp', prefix: UDP_PREFIX, network: '10.245.0.0/16', hosts: lab.hosts.slice(3) },
    ];
    // Agents lease below .200; garbage goes above.
    await putNetworkConfig(lab, { Network: nets[0]!.network, SubnetMax: '10.244.199.0', Backend: { Type: 'vxlan', VNI: 1, Port: 8472 } }, nets[0]!.prefix);
    await putNetworkConfig(lab, { Network: nets[1]!.network, SubnetMax: '10.245.199.0', Backend: { Type: 'udp', Port: 8285 } }, nets[1]!.prefix);
    const agents = new Map<string, Agent>();
    for (const net of nets) {
      for (const h of net.hosts) {
        const extra = ['--log-level', 'info', '--iface', 'eth0', ...(net.prefix === PREFIX ? [] : ['--etcd-prefix', net.prefix])];
        agents.set(h.name, { host: h, net, lab: startAgent(lab, h, extra), down: false });
      }
    }
    const containers = new Map<string, LabContainer>();
    for (const a of agents.values()) containers.set(a.host.name, await attachContainer(lab, a.host, await waitReady(lab, a.lab, 30_000)));
    say(`weftd ready on ${[...agents.keys()].join(', ')}; containers ${[...containers.values()].map((c) => `${c.name} ${c.ip}`).join(', ')}`);

    // Every container pings every other one of its network; wait until all answer before the faults start.
    for (const net of nets) {
      for (const a of net.hosts) for (const b of net.hosts) {
        if (a === b) continue;
        const from = containers.get(a.name)!, to = containers.get(b.name)!;
        pingers.push({ from, to, net: net.name, p: startPinger(from.ns, to.ip, pingIntervalMs, { timestamps: true }) });
      }
    }
    const warm = Date.now();
    while (pingers.some((x) => !x.p.replyTimes().some((t) => t > warm + 200))) {
      if (Date.now() - warm > 15_000) {
        throw new Error(`before any fault, these pairs do not ping: ${pingers.filter((x) => !x.p.replyTimes().some((t) => t > warm + 200)).map((x) => `${x.from.name} -> ${x.to.name}`).join(', ')}`);
      }
      await sleep(100);
    }

    // ---- processes: baselines, exits, the systemd-like restart
    const t0 = Date.now();
    const rel = (t: number) => t - t0;
    const processes: AgentProcess[] = [];
    const procOf = new Map<TrackedProcess, AgentProcess>();
    const track = (a: Agent) => {
      const proc = a.lab.proc;
      const rec: AgentProcess = { host: a.host.name, pid: proc.pid!, startedMs: rel(Date.now()) };
      processes.push(rec);
      procOf.set(proc, rec);
      void proc.exited.then(({ code, signal }) => {
        if (stopping) return; // the teardown's SIGTERM
        const bySchedule = a.killing === proc;
        rec.exit = { code, signal, atMs: rel(Date.now()), bySchedule, ...(bySchedule ? {} : { logTail: lab.readLog(proc).trim().split('\n').slice(-30).join('\n') }) };
        if (bySchedule) return;
        say(`  !! weftd on ${a.host.name} (pid ${rec.pid}) exited by itself (${code ?? signal}); restarting it in 1 s`);
        a.down = true;
        setTimeout(() => { if (!stopping && a.down && a.lab.proc === proc) { void restartAgent(lab, a.lab).then(() => { a.down = false; track(a); }); } }, 1000);
      });
    };
    for (const a of agents.values()) {
      track(a);
      procOf.get(a.lab.proc)!.baselineRssKiB = rssKiB(a.lab.proc.pid!);
    }
    sampler = setInterval(() => {
      for (const a of agents.values()) {
        const rec = procOf.get(a.lab.proc);
        if (rec && rec.baselineRssKiB === undefined && !rec.exit && logRecords(lab, a.lab).some((r) => r.msg === 'ready')) rec.baselineRssKiB = rssKiB(rec.pid);
      }
    }, 500);

    // ---- the faults
    const plan = planFaults({
      seed: o.seed, durationMs: o.seconds * 1000, etcdMembers: lab.etcd!.members.map((m) => m.name),
      hosts: lab.hosts.map((h) => ({ name: h.name, backend: agents.get(h.name)!.net.name })),
      ...(o.kinds ? { kinds: o.kinds } : {}),
    });
    say(`seed ${o.seed}: ${plan.length} faults planned over ${o.seconds} s`);
    const applied: AppliedFault[] = [];
    const garbageLeft: string[] = [];
    const running: Promise<void>[] = [];
    for (const f of plan) {
      await sleep(t0 + f.at - Date.now());
      const rec: AppliedFault = { ...f, startedMs: rel(Date.now()), endedMs: rel(Date.now()), detail: '' };
      applied.push(rec);
      running.push(
        applyFault(lab, f, agents, garbageLeft, { track, pick: f.pick })
          .then((d) => { rec.detail = d; }, (e: Error) => { rec.error = e.message; })
          .finally(() => {
            rec.endedMs = rel(Date.now());
            say(`  ${(rec.startedMs / 1000).toFixed(3).padStart(8)} s  ${f.kind.padEnd(13)} ${f.target.padEnd(3)} ${rec.error ? `FAILED TO APPLY: ${rec.error}` : rec.detail}`);
          }),
      );
    }
    await sleep(t0 + o.seconds * 1000 - Date.now());
    await Promise.all(running);
    const lastFaultEndMs = Math.max(o.seconds * 1000, ...applied.map((f) => f.endedMs));

    // ---- within settleMs of the last fault, the cluster must be whole again
    const final: FinalCheck = { convergedAfterMs: undefined, problems: [], leases: {} };
    const deadline = t0 + lastFaultEndMs + settleMs;
    for (;;) {
      const problems: string[] = [];
      const now = Date.now();
      for (const x of pingers) {
        const t = x.p.replyTimes();
        const lastReply = t.length ? t[t.length - 1]! : 0;
        if (lastReply < t0 + lastFaultEndMs || now - lastReply > 300) problems.push(`${x.from.name} -> ${x.to.name}: no reply for ${((now - lastReply) / 1000).toFixed(1)} s`);
      }
      for (const net of nets) {
        const live = liveLeases(net, await readLeases(lab, net.prefix).catch(() => []));
        final.leases[net.name] = live.map((l) => `${l.subnet} ${l.publicIp}${l.mac ? ` ${l.mac}` : ''}`);
        problems.push(...leaseConflicts(live).map((c) => `${net.name} leases: ${c}`));
        for (const h of net.hosts) {
          const a = agents.get(h.name)!;
          const p = [
            ...checkOwnLease(h, a.lab, live),
            ...(await (net.name === 'vxlan' ? checkVxlanHost(lab, h, live) : checkUdpHost(lab, h, net, a.lab, live)).catch((e: Error) => [`cannot read its state: ${e.message}`])),
          ];
          problems.push(...p.map((s) => `${h.name}: ${s}`));
        }
      }
      final.problems = problems;
      if (problems.length === 0) { final.convergedAfterMs = rel(now) - lastFaultEndMs; break; }
      if (Date.now() >= deadline) break;
      await sleep(Math.min(250, deadline - Date.now()));
    }
    clearInterval(sampler);
    stopping = true;
    for (const a of agents.values()) {
      const rec = procOf.get(a.lab.proc);
      if (rec && !rec.exit) rec.endRssKiB = rssKiB(rec.pid);
    }
    const pairs: PairResult[] = [];
    for (const x of pingers) {
      const s = await x.p.stop();
      pairs.push({ from: x.from.name, to: x.to.name, network: x.net, replies: x.p.replyTimes().map(rel), sent: s.sent, lost: s.lost });
    }
    pingers.length = 0;
    return {
      seed: o.seed, seconds: o.seconds, pingIntervalMs, settleMs,
      topology: `h1-h3 vxlan ${nets[0]!.network}, h4-h5 udp ${nets[1]!.network} (prefix ${UDP_PREFIX}); etcd 3 members; one container per host`,
      faults: applied, lastFaultEndMs, pairs, processes, final, garbageLeft, labDir: lab.dir,
    };
  } finally {
    stopping = true;
    clearInterval(sampler);
    await Promise.all(pingers.map((x) => x.p.stop().catch(() => undefined)));
    await lab.destroy();
  }
}

/** Applies one fault and undoes it after its hold; resolves to what was done. */
async function applyFault(lab: Lab, f: PlannedFault, agents: Map<string, Agent>, garbageLeft: string[], ctx: { track: (a: Agent) => void; pick: number }): Promise<string> {
  const member = () => lab.etcd!.members.find((m) => m.name === f.target)!;
  const a = agents.get(f.target);
  const hold = `${(f.holdMs / 1000).toFixed(2)} s`;
  switch (f.kind) {
    case 'weftd-kill': {
      const old = a!.lab.proc;
      a!.killing = old;
      a!.down = true;
      await lab.stop(old, { signal: 'SIGKILL', graceMs: 100 });
      await sleep(f.holdMs);
      await restartAgent(lab, a!.lab);
      a!.down = false;
      ctx.track(a!);
      return `kill -9 pid ${old.pid}; restarted ${hold} later as pid ${a!.lab.proc.pid}`;
    }
    case 'etcd-stop':
      await member().kill('SIGSTOP');
      await sleep(f.holdMs);
      await member().kill('SIGCONT');
      return `SIGSTOP, SIGCONT ${hold} later`;
    case 'etcd-kill': {
      const t = Date.now();
      await member().kill('SIGKILL');
      await sleep(f.holdMs);
      await member().restart();
      return `kill -9; restarted ${hold} later, healthy after ${((Date.now() - t) / 1000).toFixed(2)} s`;
    }
    case 'lease-delete': {
      const s = readSubnetEnv(a!.lab.subnetFile).subnet.replace('/', '-');
      const key = `${a!.net.prefix}/subnets/${s}`;
      const n = (await etcdctl(lab, ['del', key])).trim();
      return `etcdctl del ${key} (${n} deleted)`;
    }
    case 'link-flap': {
      const h = a!.host;
      if (f.variant === 'carrier') {
        await lab.execIn(lab.ulNs, 'ip', ['link', 'set', `u-${h.name}`, 'down']);
        await sleep(f.holdMs);
        await lab.execIn(lab.ulNs, 'ip', ['link', 'set', `u-${h.name}`, 'up']);
        return `switch port u-${h.name} down for ${hold} (carrier lost on eth0)`;
      }
      await lab.execIn(h.ns, 'ip', ['link', 'set', 'eth0', 'down']);
      await sleep(f.holdMs);
      await lab.execIn(h.ns, 'ip', ['link', 'set', 'eth0', 'up']);
      // Setting eth0 down removed the routes through it; the host's network manager would put the default route back.
      await lab.execIn(h.ns, 'ip', ['route', 'replace', 'default', 'via', UNDERLAY_GATEWAY, 'dev', 'eth0']);
      return `ip link set eth0 down for ${hold}, then up (+ default route)`;
    }
    case 'device-delete': {
      const dev = a!.net.name === 'vxlan' ? VXLAN_DEV : TUN_DEV;
      const r = await lab.execIn(a!.host.ns, 'ip', ['link', 'del', dev]);
      return `ip link del ${dev}${r.code === 0 ? '' : ` (failed: ${r.stderr.trim()})`}`;
    }
    case 'route-delete': {
      const dev = a!.net.name === 'vxlan' ? VXLAN_DEV : TUN_DEV;
      const routes = (await lab.ipJson(a!.host.ns, ['route', 'show', 'dev', dev]).catch(() => [])) as Array<{ dst: string }>;
      if (routes.length === 0) return `no route on ${dev} to delete`;
      const dst = routes[Math.floor(ctx.pick * routes.length)]!.dst;
      // By destination alone: the kernel matches no `dev` against a route through a
      // nexthop object (weft's IPv4 peer routes), so `del <dst> dev <dev>` finds nothing.
      const r = await lab.execIn(a!.host.ns, 'ip', ['route', 'del', dst]);
      return `ip route del ${dst} (on ${dev})${r.code === 0 ? '' : ` (failed: ${r.stderr.trim()})`}`;
    }
    case 'garbage-lease': {
      const net = a!.net;
      const live = liveLeases(net, await readLeases(lab, net.prefix)).filter((l) => net.hosts.some((h) => h.underlayIp === l.publicIp));
      const g = garbageFor(f, net, live);
      for (const [k, v] of g.puts) await etcdctl(lab, ['put', k, v]);
      if (!g.transient) {
        garbageLeft.push(...g.puts.map(([k]) => k));
        return `${f.variant}: ${g.puts.map(([k, v]) => `${k} = ${v}`).join('; ')}`;
      }
      await sleep(f.holdMs);
      for (const [k] of g.puts) await etcdctl(lab, ['del', k]);
      return `${f.variant}${g.victim ? ` (against ${g.victim})` : ''}: ${g.puts.map(([k, v]) => `${k} = ${v}`).join('; ')}; removed after ${hold}`;
    }
  }
}
