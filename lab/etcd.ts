// A real etcd (3.4) for the lab and the tests: 1 or 3 members on 127.0.0.1 with free ports,
// or one member inside a lab network namespace reached from the test process
// through a unix socket + TCP relay. Every process and temp dir is tracked and
// removed by stop(), and also when the test process exits or is interrupted.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, mkdirSync, openSync, closeSync, existsSync } from 'node:fs';
import { request } from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';

export interface EtcdMember {
  readonly name: string;
  /** Client URL reachable from the test process (direct, not through the relay). */
  readonly endpoint: string;
  /** Its unix socket, in netns and unixSocket modes (what the relay forwards to). */
  readonly socketPath: string | undefined;
  readonly pid: number | undefined;
  kill(signal?: 'SIGKILL' | 'SIGTERM' | 'SIGSTOP' | 'SIGCONT'): Promise<void>;
  /** Starts it again with the same data dir and ports, waits until healthy. */
  restart(): Promise<void>;
}

export interface EtcdCluster {
  /** Client URLs for the test process. */
  readonly endpoints: string[];
  /** Client URLs for processes inside the lab (netns mode); equal to endpoints otherwise. */
  readonly labEndpoints: string[];
  readonly members: EtcdMember[];
  /** A new client on `endpoints`; closed by stop(). */
  client(): Etcd3;
  /** Relay only (netns or unixSocket mode): drop all relayed connections and refuse new ones. */
  pauseRelay(): void;
  resumeRelay(): void;
  stop(): Promise<void>;
  /** Lets the members outlive this process (weft lab --keep): no kill or cleanup at exit. */
  detach(): void;
}

export interface StartEtcdOptions {
  members?: 1 | 3;
  netns?: string;
  clientIp?: string;
  unixSocket?: boolean;
  dataDirRoot?: string;
  /** Milliseconds to wait for health; default 15000. */
  timeoutMs?: number;
}

// ---- process registry: kill everything we started if the test dies ----
const live = new Set<ChildProcess>();
const dirs = new Set<string>();
let hooked = false;
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  const cleanup = () => {
    for (const p of live) { try { p.kill('SIGKILL'); } catch { /* gone */ } }
    live.clear();
    for (const d of dirs) { try { rmSync(d, { recursive: true, force: true }); } catch { /* ignore */ } }
    dirs.clear();
  };
  process.on('exit', cleanup);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => { cleanup(); process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1)); });
  }
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

function tail(file: string, lines = 30): string {
  try { return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n'); } catch { return '(no log)'; }
}

/** GET /health over TCP or a unix socket; true when etcd reports {"health":"true"}. */
function healthy(target: { host: string; port: number } | { socketPath: string }): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ ...target, path: '/health', method: 'GET', timeout: 1000 }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve(res.statusCode === 200 && /"health":\s*"true"/.test(body)));
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => { req.destroy(); resolve(false); });
    req.end();
  });
}

interface MemberSpec {
  name: string; dir: string; cwd: string; log: string;
  clientHost: string; clientPort: number; peerHost: string; peerPort: number;
  socketName?: string;
}

class Member implements EtcdMember {
  proc: ChildProcess | undefined;
  exited: Promise<void> = Promise.resolve();
  constructor(readonly spec: MemberSpec, private readonly args: string[], private readonly netns: string | undefined,
    readonly endpoint: string, private readonly timeoutMs: number) {}

  get name(): string { return this.spec.name; }
  get pid(): number | undefined { return this.proc?.exitCode === null ? this.proc.pid : undefined; }
  get socketPath(): string | undefined { return this.spec.socketName ? join(this.spec.cwd, this.spec.socketName) : undefined; }

  start(): void {
    const fd = openSync(this.spec.log, 'a');
    const cmd = this.netns ? 'ip' : 'etcd';
    const argv = this.netns ? ['netns', 'exec', this.netns, 'etcd', ...this.args] : this.args;
    // A stale socket file from a killed run would make etcd fail to listen.
    if (this.socketPath) rmSync(this.socketPath, { force: true });
    const p = spawn(cmd, argv, { cwd: this.spec.cwd, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    this.proc = p;
    live.add(p);
    this.exited = new Promise((r) => p.once('exit', () => { live.delete(p); r(); }));
  }

  async waitHealthy(): Promise<void> {
    const deadline = Date.now() + this.timeoutMs;
    const target = this.socketPath && this.netns ? { socketPath: this.socketPath } : { host: this.spec.clientHost, port: this.spec.clientPort };
    while (Date.now() < deadline) {
      if (this.proc?.exitCode !== null && this.proc?.exitCode !== undefined) break;
      if (await healthy(target)) return;
      await delay(100);
    }
    const why = this.proc?.exitCode != null ? `exited with code ${this.proc.exitCode}` : `not healthy after ${this.timeoutMs} ms`;
    throw new Error(`etcd member ${this.name} ${why}; log tail (${this.spec.log}):\n${tail(this.spec.log)}`);
  }

  async kill(signal: 'SIGKILL' | 'SIGTERM' | 'SIGSTOP' | 'SIGCONT' = 'SIGKILL'): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    p.kill(signal);
    if (signal === 'SIGSTOP' || signal === 'SIGCONT') return;
    await this.exited;
  }

  async restart(): Promise<void> {
    await this.kill('SIGKILL');
    this.start();
    await this.waitHealthy();
  }
}

class Relay {
  private server: net.Server;
  private conns = new Set<net.Socket>();
  private paused = false;
  port = 0;
  constructor(private readonly socketPaths: () => string[]) {
    let next = 0;
    this.server = net.createServer((c) => {
      if (this.paused) { c.destroy(); return; }
      const paths = this.socketPaths().filter((p) => existsSync(p));
      const path = paths[next++ % Math.max(1, paths.length)];
      if (!path) { c.destroy(); return; }
      const u = net.connect(path);
      this.conns.add(c); this.conns.add(u);
      const drop = () => { c.destroy(); u.destroy(); this.conns.delete(c); this.conns.delete(u); };
      c.on('error', drop); u.on('error', drop); c.on('close', drop); u.on('close', drop);
      c.pipe(u); u.pipe(c);
    });
  }
  async listen(): Promise<void> {
    await new Promise<void>((res, rej) => { this.server.once('error', rej); this.server.listen(0, '127.0.0.1', () => res()); });
    this.port = (this.server.address() as net.AddressInfo).port;
  }
  pause(): void { this.paused = true; for (const c of this.conns) c.destroy(); this.conns.clear(); }
  resume(): void { this.paused = false; }
  close(): Promise<void> {
    this.pause();
    return new Promise((r) => this.server.close(() => r()));
  }
}

export async function startEtcd(opts: StartEtcdOptions = {}): Promise<EtcdCluster> {
  hookExit();
  const n = opts.members ?? 1;
  const netns = opts.netns;
  if (netns && !opts.clientIp) throw new Error('startEtcd: netns needs clientIp (the etcd host address inside the lab)');
  if (netns && spawnSync('ip', ['netns', 'exec', netns, 'true']).status !== 0) throw new Error(`startEtcd: network namespace ${netns} does not exist`);
  const useSocket = Boolean(netns) || Boolean(opts.unixSocket);
  const timeoutMs = opts.timeoutMs ?? 15000;
  const root = mkdtempSync(join(opts.dataDirRoot ?? tmpdir(), 'weft-etcd-'));
  dirs.add(root);
  const token = `weft-test-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;

  const specs: MemberSpec[] = [];
  for (let i = 0; i < n; i++) {
    const name = `m${i}`;
    const dir = join(root, name);
    mkdirSync(dir, { recursive: true });
    const host = netns ? opts.clientIp! : '127.0.0.1';
    specs.push({
      name, dir: join(dir, 'data'), cwd: dir, log: join(dir, 'etcd.log'),
      clientHost: host, clientPort: netns ? 2379 + 10 * i : await freePort(),
      peerHost: host, peerPort: netns ? 2380 + 10 * i : await freePort(),
      ...(useSocket ? { socketName: `etcd.sock:${i}` } : {}),
    });
  }
  const initialCluster = specs.map((s) => `${s.name}=http://${s.peerHost}:${s.peerPort}`).join(',');
  const members = specs.map((s) => {
    const clientUrl = `http://${s.clientHost}:${s.clientPort}`;
    const listen = s.socketName ? `${clientUrl},unix://${s.socketName}` : clientUrl;
    const args = [
      '--name', s.name, '--data-dir', s.dir,
      '--listen-client-urls', listen, '--advertise-client-urls', clientUrl,
      '--listen-peer-urls', `http://${s.peerHost}:${s.peerPort}`,
      '--initial-advertise-peer-urls', `http://${s.peerHost}:${s.peerPort}`,
      '--initial-cluster', initialCluster, '--initial-cluster-state', 'new', '--initial-cluster-token', token,
      // Fast elections keep startup and failover within test time limits.
      '--heartbeat-interval', '50', '--election-timeout', '500',
      // The bench writes its thousands of leases in transactions of 1000 puts (etcd's default allows 128).
      '--max-txn-ops', '1000',
      '--logger', 'zap', '--log-outputs', 'stderr', '--log-level', 'warn',
    ];
    return new Member(s, args, netns, clientUrl, timeoutMs);
  });

  let relay: Relay | undefined;
  const clients: Etcd3[] = [];
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    for (const c of clients) { try { c.close(); } catch { /* ignore */ } }
    await relay?.close().catch(() => {});
    await Promise.all(members.map((m) => m.kill('SIGKILL').catch(() => {})));
    rmSync(root, { recursive: true, force: true });
    dirs.delete(root);
  };

  try {
    for (const m of members) m.start();
    await Promise.all(members.map((m) => m.waitHealthy()));
    if (useSocket) {
      relay = new Relay(() => members.filter((m) => m.pid !== undefined).map((m) => m.socketPath!));
      await relay.listen();
    }
  } catch (e) {
    await stop();
    throw e;
  }

  const endpoints = relay ? [`http://127.0.0.1:${relay.port}`] : members.map((m) => m.endpoint);
  return {
    endpoints,
    labEndpoints: members.map((m) => m.endpoint),
    members,
    client() {
      const c = new Etcd3({ hosts: endpoints });
      clients.push(c);
      return c;
    },
    pauseRelay() { if (!relay) throw new Error('no relay: start with unixSocket or netns'); relay.pause(); },
    resumeRelay() { if (!relay) throw new Error('no relay: start with unixSocket or netns'); relay.resume(); },
    stop,
    detach() {
      for (const m of members) {
        if (!m.proc) continue;
        live.delete(m.proc);
        m.proc.unref();
      }
      dirs.delete(root);
    },
  };
}

/** Compacts the key-value history up to the current revision (physically). Returns that revision. */
export async function compact(client: Etcd3): Promise<number> {
  const res = await client.get('weft-test-compact-probe').exec();
  const rev = Number(res.header.revision);
  await client.kv.compact({ revision: rev, physical: true });
  return rev;
}
