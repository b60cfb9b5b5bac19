// The test lab: an overlay-ready network on one machine, built only from
// network namespaces. Nothing is configured in the machine's own namespace.
//
//   <id>-ul      underlay: bridge ul0 (MTU underlayMtu), one veth port per host below
//   <id>-h<i>    host i: eth0 = 192.0.2.<10+i>/24, default via 192.0.2.1 (unassigned)
//   <id>-etcd    etcd host: eth0 = 192.0.2.2/24, etcd started by ./etcd.ts (opts.etcd; data under <dir>)
//   <id>-out     optional "outside" host on the underlay, not in the overlay: 192.0.2.250/24
// ipv6: a dual-stack underlay (one segment): every host also has 2001:db8::<10+i>/64 on eth0
//   (nodad), containers an address of the host's IPv6 subnet when addContainer is given one
// topology 'two-segments': two L2 segments joined by a router (./segments.ts):
//   ul0 = segment a, 192.0.2.0/24; ul1 = segment b, 198.51.100.0/24 (hosts there: 198.51.100.<10+i>/24)
//   <id>-rt      router: eth0 = 192.0.2.1/24 on ul0, eth1 = 198.51.100.1/24 on ul1, forwarding;
//                every host's default route goes through it, so etcd (on segment a) is reachable from both
//   <id>-h<i>c<j> container j of host i, attached to a bridge in the host by the real CNI
//                bridge plugin with host-local IPAM (state under <dir>/ipam/h<i>)
// id = "wt" + 5 random base36 characters; the runner sweeps leftover "wt*-" namespaces.
//
// API
//   Lab.create(opts?: LabOptions): Promise<Lab>           (cleans up after itself if setup fails)
//   withLab(opts, fn: (lab) => Promise<T>): Promise<T>     (always destroys)
//   lab.id, lab.dir, lab.hosts: LabHost[], lab.etcd?, lab.outside?, lab.containers: LabContainer[]
//   lab.namespaces: string[]                               (every namespace it made, in order)
//   lab.ulNs, lab.etcdNs?                                  (underlay / etcd namespace names)
//   lab.runningProcesses: TrackedProcess[]                 (spawnIn processes still running)
//   lab.host(i | 'h1'): LabHost
//   lab.addContainer(host, { bridge, subnet, gateway, mtu, name? }): Promise<LabContainer>
//   lab.removeContainer(c): Promise<void>
//   lab.spawnIn(ns, cmd, args, { env?, cwd?, logName?, runDir? }): TrackedProcess   (log under <dir>/logs;
//                runDir: a host's own /run, host.runDir, mounted over /run for the process)
//   lab.stop(p, { signal?, graceMs? }): Promise<void>      (group SIGTERM, SIGKILL after grace)
//   lab.readLog(p): string
//   lab.execIn(ns, cmd, args, opts?): Promise<ExecResult>  (never rejects on exit code; on timeout yes; opts.runDir as spawnIn)
//   lab.ipJson(ns, args), lab.bridgeJson(ns, args)         (parsed `ip -j` / `bridge -j`)
//   lab.destroy(): Promise<void>                           (idempotent; throws the collected errors at the end)
//   lab.router?, lab.underlayMembers                      (two-segments: the router; every namespace on a segment)
// Also exported: UNDERLAY_GATEWAY, ETCD_IP, OUTSIDE_IP, hostUnderlayIp(i), SEGMENTS. Lower layers:
// ./netns.ts (exec, execIn, ip, ipJson, bridgeJson, spawnIn, stopProcess, isPidAlive, ...),
// ./cni.ts (cniAdd, cniDel, bridgeNetConf, CniError), ./ping.ts (ping, pingMatrix, startPinger).
// If the test process exits or gets SIGINT/SIGTERM, live labs are removed synchronously.
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bridgeNetConf, cniAdd, cniDel, type CniInvocation } from './cni.js';
import {
  NETNS_DIR, addNetns, bridgeJson, delNetns, delNetnsSync, execIn, ip, ipJson, onExitCleanup, readLog, spawnIn, waitPidGone,
  stopProcess, type ExecOptions, type ExecResult, type TrackedProcess,
} from './netns.js';
import { startEtcd, type EtcdCluster } from './etcd.js';
import { removeLabCgroups } from './runtime/cgroups.js';
import { addRouter, SEGMENTS, segmentIp, type Segment, type UnderlayMember } from './segments.js';

export type { ExecResult, TrackedProcess } from './netns.js';
export { SEGMENTS, type Segment } from './segments.js';

export interface LabOptions {
  /** Number of hosts h1..hN. Default 3. */
  hosts?: number;
  /** MTU of the underlay bridge and every underlay veth. Default 1500. */
  underlayMtu?: number;
  /** Add <id>-out at 192.0.2.250: on the underlay, not in the overlay. Default false. */
  outsideHost?: boolean;
  /** Start etcd in <id>-etcd at 192.0.2.2. Default true. */
  etcd?: boolean;
  etcdMembers?: 1 | 3;
  /**
   * The directory under which etcd keeps its data (a directory of its own, removed with the lab).
   * Default the lab's directory. The bench's scale lab uses a tmpfs (bench/control-plane.ts scaleEtcdDataRoot).
   */
  etcdDataRoot?: string;
  /** Give each host `default via 192.0.2.1 dev eth0` (the agent picks its interface from it). Default true. */
  defaultRoute?: boolean;
  /** 'two-segments': segments a and b joined by a router namespace (see the header). Default 'one-segment'. */
  topology?: 'one-segment' | 'two-segments';
  /** two-segments: how many hosts, the last ones, sit on segment b. Default half of them, rounded down. */
  segmentBHosts?: number;
  /** A dual-stack underlay: hosts get 2001:db8::<10+i>/64 too (one-segment only). Default false. */
  ipv6?: boolean;
}

export interface LabHost {
  index: number;
  /** 'h1' */
  name: string;
  ns: string;
  /** /run/netns/<ns> */
  nsPath: string;
  underlayIp: string;
  /** Dual-stack lab: its IPv6 underlay address, 2001:db8::<10+i>. */
  underlayIpv6?: string;
  /** Its L2 segment: 'a' (192.0.2.0/24, the only one in the one-segment lab) or 'b'. */
  segment: Segment;
  /** Per-host directory for the subnet file, configs, sockets. */
  dir: string;
  /** The host's own /run (<dir>/run): weftd and its helpers run with it mounted over /run (netns.ts inOwnRun). */
  runDir: string;
}

export interface LabContainer {
  host: LabHost;
  /** 'h1c1' */
  name: string;
  ns: string;
  nsPath: string;
  /** Without prefix length, e.g. 10.244.1.2 */
  ip: string;
  /** As CNI returned it, e.g. 10.244.1.2/24 */
  cidr: string;
  /** Dual stack: its IPv6 address (without prefix length), e.g. fd00:10:244:7::2 */
  ipv6?: string;
}

export interface AddContainerOptions { bridge: string; subnet: string; gateway: string; mtu: number; name?: string; ipv6?: { subnet: string; gateway: string } }
/** Attach through a CNI conflist file alone (e.g. the one weftd --cni-conf wrote). */
export interface AddContainerFromConflist { conflist: string; name?: string; /** CNI_PATH directories (e.g. a lab-local one holding weft's plugin first). */ cniPath?: readonly string[] }

export const UNDERLAY_PREFIX = '192.0.2';
/** The default gateway of segment a: unassigned in the one-segment lab, the router in two-segments. */
export const UNDERLAY_GATEWAY = '192.0.2.1';
const SEGMENT_BRIDGE: Record<Segment, string> = { a: 'ul0', b: 'ul1' };
export const ETCD_IP = '192.0.2.2';
export const OUTSIDE_IP = '192.0.2.250';
export const hostUnderlayIp = (index: number): string => `${UNDERLAY_PREFIX}.${10 + index}`;
/** A dual-stack lab host's IPv6 underlay address (documentation prefix 2001:db8::/32). */
export const hostUnderlayIpv6 = (index: number): string => `2001:db8::${10 + index}`;

export interface LabState { id: string; dir: string; namespaces: string[]; pids: number[]; cgroups?: string[] }

export class Lab {
  readonly id: string;
  readonly dir: string;
  readonly ulNs: string;
  readonly hosts: LabHost[] = [];
  readonly containers: LabContainer[] = [];
  readonly namespaces: string[] = [];
  etcd?: EtcdCluster;
  outside?: { ns: string; ip: string };
  etcdNs?: string;

  /** Name prefix of every cgroup the lab's container runtimes make (their --cgroup-parent): all are removed with the lab. */
  readonly cgroupPrefix: string;
  private readonly processes = new Set<TrackedProcess>();
  private readonly teardowns: Array<() => Promise<void>> = [];
  private readonly cni = new Map<LabContainer, CniInvocation>();
  private readonly containerCount = new Map<LabHost, number>();
  private readonly removeExitHook: () => void;
  private destroying: Promise<void> | undefined;
  private logSeq = 0;

  /** two-segments: the router namespace and its address on each segment. */
  router?: { ns: string; ips: Record<Segment, string> };
  /** Every namespace plugged into a segment (hosts, etcd, outside, router ports), with its segment and address. */
  readonly underlayMembers: UnderlayMember[] = [];

  private constructor(readonly opts: Readonly<Required<Omit<LabOptions, 'etcdMembers' | 'etcdDataRoot'>>> & { etcdMembers: 1 | 3; etcdDataRoot: string | undefined }) {
    this.id = `wt${randomBase36(5)}`;
    this.ulNs = `${this.id}-ul`;
    this.cgroupPrefix = `weft-lab-${this.id}-`;
    this.dir = mkdtempSync(join(tmpdir(), `weft-lab-${this.id}-`));
    mkdirSync(join(this.dir, 'logs'));
    this.removeExitHook = onExitCleanup(() => this.destroySync());
  }

  static async create(opts: LabOptions = {}): Promise<Lab> {
    const o = {
      hosts: opts.hosts ?? 3,
      underlayMtu: opts.underlayMtu ?? 1500,
      outsideHost: opts.outsideHost ?? false,
      etcd: opts.etcd ?? true,
      etcdMembers: opts.etcdMembers ?? 1,
      defaultRoute: opts.defaultRoute ?? true,
      topology: opts.topology ?? 'one-segment',
      segmentBHosts: opts.topology === 'two-segments' ? opts.segmentBHosts ?? Math.floor((opts.hosts ?? 3) / 2) : 0,
      ipv6: opts.ipv6 ?? false,
      etcdDataRoot: opts.etcdDataRoot,
    };
    if (o.ipv6 && o.topology !== 'one-segment') throw new Error('ipv6 (a dual-stack underlay) is built for the one-segment topology only');
    if (!Number.isInteger(o.hosts) || o.hosts < 1 || o.hosts > 200) throw new Error(`hosts must be 1..200, got ${o.hosts}`);
    if (!Number.isInteger(o.segmentBHosts) || o.segmentBHosts < 0 || o.segmentBHosts > o.hosts) throw new Error(`segmentBHosts must be 0..${o.hosts}, got ${o.segmentBHosts}`);
    if (!Number.isInteger(o.underlayMtu) || o.underlayMtu < 1280 || o.underlayMtu > 9000) {
      throw new Error(`underlayMtu must be 1280..9000, got ${o.underlayMtu}`);
    }
    const lab = new Lab(Object.freeze(o));
    try {
      await lab.setup();
    } catch (err) {
      await lab.destroy().catch(() => { /* the setup error is the one to report */ });
      throw err;
    }
    return lab;
  }

  private async setup(): Promise<void> {
    const two = this.opts.topology === 'two-segments';
    await this.newNs(this.ulNs);
    for (const seg of two ? SEGMENTS : (['a'] as const)) {
      await ip(this.ulNs, ['link', 'add', SEGMENT_BRIDGE[seg], 'mtu', String(this.opts.underlayMtu), 'type', 'bridge']);
      await ip(this.ulNs, ['link', 'set', SEGMENT_BRIDGE[seg], 'up']);
    }
    if (two) {
      const ns = `${this.id}-rt`;
      await this.newNs(ns);
      this.router = await addRouter(this, ns);
    }

    const firstB = this.opts.hosts - this.opts.segmentBHosts + 1;
    for (let i = 1; i <= this.opts.hosts; i++) {
      const name = `h${i}`;
      const ns = `${this.id}-${name}`;
      const dir = join(this.dir, name);
      mkdirSync(dir);
      mkdirSync(join(dir, 'run'));
      await this.newNs(ns);
      const segment: Segment = i >= firstB ? 'b' : 'a';
      const host: LabHost = {
        index: i, name, ns, nsPath: `${NETNS_DIR}/${ns}`, underlayIp: segmentIp(segment, 10 + i), segment, dir, runDir: join(dir, 'run'),
        ...(this.opts.ipv6 ? { underlayIpv6: hostUnderlayIpv6(i) } : {}),
      };
      this.hosts.push(host);
      await this.plugIntoUnderlay(ns, name, host.underlayIp, this.opts.defaultRoute, segment);
      if (host.underlayIpv6) await ip(ns, ['addr', 'add', `${host.underlayIpv6}/64`, 'dev', 'eth0', 'nodad']);
    }
    if (this.opts.outsideHost) {
      const ns = `${this.id}-out`;
      await this.newNs(ns);
      await this.plugIntoUnderlay(ns, 'out', OUTSIDE_IP, this.opts.defaultRoute);
      this.outside = { ns, ip: OUTSIDE_IP };
    }
    if (this.opts.etcd) {
      const ns = `${this.id}-etcd`;
      await this.newNs(ns);
      this.etcdNs = ns;
      // Behind the router, etcd needs a way back to segment b.
      await this.plugIntoUnderlay(ns, 'etcd', ETCD_IP, two);
      this.etcd = await startEtcd({ members: this.opts.etcdMembers, netns: ns, clientIp: ETCD_IP, dataDirRoot: this.opts.etcdDataRoot ?? this.dir });
    }
  }

  /** A new empty namespace <id>-<suffix> (lo up), removed with the lab. */
  async addNamespace(suffix: string): Promise<string> {
    this.assertAlive();
    const ns = `${this.id}-${suffix}`;
    await this.newNs(ns);
    return ns;
  }

  private async newNs(ns: string): Promise<void> {
    await addNetns(ns);
    this.namespaces.push(ns);
    await ip(ns, ['link', 'set', 'lo', 'up']);
  }

  /** veth: `u-<role>` on the segment's bridge in the underlay namespace, `dev` (eth0) in ns. */
  async plugIntoUnderlay(ns: string, role: string, addr: string, defaultRoute: boolean, segment: Segment = 'a', dev = 'eth0'): Promise<void> {
    const mtu = String(this.opts.underlayMtu);
    const port = `u-${role}`;
    await ip(this.ulNs, ['link', 'add', port, 'mtu', mtu, 'type', 'veth', 'peer', 'name', dev, 'mtu', mtu, 'netns', ns]);
    await ip(this.ulNs, ['link', 'set', port, 'master', SEGMENT_BRIDGE[segment], 'up']);
    await ip(ns, ['addr', 'add', `${addr}/24`, 'dev', dev]);
    await ip(ns, ['link', 'set', dev, 'up']);
    if (defaultRoute) await ip(ns, ['route', 'add', 'default', 'via', segmentIp(segment, 1), 'dev', dev]);
    this.underlayMembers.push({ ns, role, segment, ip: addr, port, dev });
  }

  /** Host by 1-based index or name ('h2'). */
  host(which: number | string): LabHost {
    const h = this.hosts.find((x) => x.index === which || x.name === which);
    if (!h) throw new Error(`lab ${this.id} has no host ${JSON.stringify(which)}`);
    return h;
  }

  /** New namespace <id>-h<i>c<j>, attached to `bridge` in the host by the CNI bridge plugin (which creates the bridge if missing). */
  async addContainer(host: LabHost, o: AddContainerOptions | AddContainerFromConflist): Promise<LabContainer> {
    this.assertAlive();
    const j = (this.containerCount.get(host) ?? 0) + 1;
    this.containerCount.set(host, j);
    const name = o.name ?? `${host.name}c${j}`;
    const ns = `${this.id}-${name}`;
    if (Buffer.byteLength(ns) > 64) throw new Error(`container namespace name too long: ${ns}`);
    await this.newNs(ns);
    const ipamDataDir = join(this.dir, 'ipam', host.name);
    mkdirSync(ipamDataDir, { recursive: true });
    const inv: CniInvocation = {
      hostNs: host.ns,
      netnsPath: `${NETNS_DIR}/${ns}`,
      containerId: ns,
      ifName: 'eth0',
      conf: 'conflist' in o ? {} : bridgeNetConf({ bridge: o.bridge, subnet: o.subnet, gateway: o.gateway, mtu: o.mtu, ipamDataDir, ...(o.ipv6 ? { ipv6: o.ipv6 } : {}) }),
      ...('conflist' in o ? { list: JSON.parse(readFileSync(o.conflist, 'utf8')) as NonNullable<CniInvocation['list']> } : {}),
      ...('conflist' in o && o.cniPath ? { cniPath: o.cniPath } : {}),
    };
    const c: LabContainer = { host, name, ns, nsPath: inv.netnsPath, ip: '', cidr: '' };
    let result;
    try {
      result = await cniAdd(inv);
    } catch (err) {
      // As a runtime must: DEL after a failed ADD (best effort; a bad config fails DEL too), then drop the namespace.
      await cniDel(inv).catch(() => {});
      await delNetns(ns).then(() => { this.namespaces.splice(this.namespaces.indexOf(ns), 1); }, () => { /* destroy() retries */ });
      throw err;
    }
    this.cni.set(c, inv);
    const v4 = result.ips!.find((x) => !x.address.includes(':')) ?? result.ips![0]!;
    c.cidr = v4.address;
    c.ip = c.cidr.split('/')[0]!;
    const v6 = result.ips!.find((x) => x.address.includes(':'));
    if (v6) c.ipv6 = v6.address.split('/')[0]!;
    this.containers.push(c);
    return c;
  }

  async removeContainer(c: LabContainer): Promise<void> {
    const inv = this.cni.get(c);
    if (!inv) throw new Error(`container ${c.name} is not in lab ${this.id}`);
    await cniDel(inv);
    this.cni.delete(c);
    await delNetns(c.ns);
    this.namespaces.splice(this.namespaces.indexOf(c.ns), 1);
    this.containers.splice(this.containers.indexOf(c), 1);
  }

  /** Tracked process inside ns; stdout and stderr go to <dir>/logs/<logName>.log. */
  spawnIn(ns: string, cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; logName?: string; runDir?: string; nsenter?: { target?: number } } = {}): TrackedProcess {
    this.assertAlive();
    const base = opts.logName ?? `${ns.slice(this.id.length + 1)}-${cmd.split('/').pop()}-${++this.logSeq}`;
    const p = spawnIn(ns, cmd, args, { ...opts, logPath: join(this.dir, 'logs', `${base}.log`) });
    this.processes.add(p);
    void p.exited.then(() => this.processes.delete(p));
    return p;
  }

  stop(p: TrackedProcess, opts: { signal?: NodeJS.Signals; graceMs?: number } = {}): Promise<void> {
    return stopProcess(p, opts);
  }

  readLog(p: TrackedProcess): string {
    return readLog(p);
  }

  execIn(ns: string, cmd: string, args: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
    return execIn(ns, cmd, args, opts);
  }

  ipJson<T = any>(ns: string, args: readonly string[]): Promise<T> { // eslint-disable-line @typescript-eslint/no-explicit-any
    return ipJson<T>(ns, args);
  }

  bridgeJson<T = any>(ns: string, args: readonly string[]): Promise<T> { // eslint-disable-line @typescript-eslint/no-explicit-any
    return bridgeJson<T>(ns, args);
  }

  /** A step destroy() runs first (newest first), before processes are stopped: e.g. removing containers, stopping dockerd. */
  onTeardown(fn: () => Promise<void>): void {
    this.teardowns.push(fn);
  }

  /** Still-running processes started with spawnIn. */
  get runningProcesses(): TrackedProcess[] {
    return [...this.processes];
  }

  /**
   * Kills tracked processes, stops etcd, CNI DELs every container, deletes
   * every namespace this lab made and its temp dir. Idempotent; errors are
   * collected and thrown together at the end.
   */
  destroy(): Promise<void> {
    this.destroying ??= this.doDestroy();
    return this.destroying;
  }

  private async doDestroy(): Promise<void> {
    const errors: unknown[] = [];
    const attempt = async (what: string, fn: () => Promise<void>) => {
      try { await fn(); } catch (err) { errors.push(new Error(`${what}: ${(err as Error).message ?? err}`)); }
    };
    for (const fn of this.teardowns.splice(0).reverse()) await attempt('runtime teardown', fn);
    await Promise.all([...this.processes].map((p) => attempt(`stop pid ${p.pid}`, () => stopProcess(p))));
    await attempt('remove cgroups', async () => removeLabCgroups(this.cgroupPrefix, this.cgroupDirs));
    if (this.etcd) await attempt('stop etcd', () => this.etcd!.stop());
    for (const [c, inv] of this.cni) await attempt(`CNI DEL ${c.name}`, () => cniDel(inv));
    this.cni.clear();
    for (const ns of [...this.namespaces].reverse()) await attempt(`delete namespace ${ns}`, () => delNetns(ns));
    this.namespaces.length = 0;
    await attempt(`remove ${this.dir}`, () => rm(this.dir, { recursive: true, force: true }));
    this.removeExitHook();
    if (errors.length) throw new AggregateError(errors, `lab ${this.id} teardown: ${errors.map((e) => (e as Error).message).join('; ')}`);
  }

  /**
   * Leaves the lab running after this process exits (weft lab --keep): its
   * processes are no longer killed at exit and the exit-time teardown is off.
   * Remove it later with Lab.removeDetached(lab.state()).
   */
  detach(): void {
    for (const p of this.processes) p.detach();
    this.etcd?.detach();
    this.removeExitHook();
  }

  /** Cgroup directories the runtimes reported (found from the daemons' own cgroups), for destroy and `lab down`. */
  readonly cgroupDirs: string[] = [];

  /** Pids of every process the lab runs (agents, helpers, etcd members). */
  pids(): number[] {
    const own = [...this.processes].map((p) => p.pid).filter((x): x is number => x !== undefined);
    return [...own, ...(this.etcd?.members.map((m) => m.pid).filter((x): x is number => typeof x === 'number') ?? [])];
  }

  /** What `weft lab --keep` records for `weft lab down`. */
  state(): LabState {
    return { id: this.id, dir: this.dir, namespaces: [...this.namespaces], pids: this.pids(), cgroups: [...this.cgroupDirs] };
  }

  /** Removes a detached lab from its recorded state: kills its processes and containers, deletes its cgroups, namespaces and directory. */
  static async removeDetached(st: LabState): Promise<void> {
    for (const pid of st.pids) {
      try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
    }
    await Promise.all(st.pids.map((pid) => waitPidGone(pid, 3000)));
    for (const pid of st.pids) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    removeLabCgroups(`weft-lab-${st.id}-`, st.cgroups ?? []);
    for (const ns of [...st.namespaces].reverse()) {
      if (!ns.startsWith(`${st.id}-`)) continue; // only what that lab made
      await delNetns(ns);
    }
    if (st.dir.includes(`weft-lab-${st.id}`)) await rm(st.dir, { recursive: true, force: true });
  }

  /** Last-resort cleanup on process exit: no CNI DEL (the namespaces and the lab dir go anyway). */
  private destroySync(): void {
    for (const p of this.processes) {
      try { process.kill(-p.pid!, 'SIGKILL'); } catch { /* gone */ }
    }
    try { removeLabCgroups(this.cgroupPrefix, this.cgroupDirs); } catch { /* keep cleaning */ }
    for (const ns of [...this.namespaces].reverse()) delNetnsSync(ns);
    this.namespaces.length = 0;
    rmSync(this.dir, { recursive: true, force: true });
  }

  private assertAlive(): void {
    if (this.destroying) throw new Error(`lab ${this.id} is destroyed`);
  }
}

/** Creates a lab, runs fn, and always destroys the lab; fn's error wins over a teardown error. */
export async function withLab<T>(opts: LabOptions, fn: (lab: Lab) => Promise<T>): Promise<T> {
  const lab = await Lab.create(opts);
  let result: T;
  try {
    result = await fn(lab);
  } catch (err) {
    await lab.destroy().catch(() => { /* report fn's error */ });
    throw err;
  }
  await lab.destroy();
  return result;
}

function randomBase36(n: number): string {
  const bytes = randomBytes(n);
  let s = '';
  for (const b of bytes) s += (b % 36).toString(36);
  return s;
}
