// The userspace WireGuard device: a wireguard-go process that weftd starts,
// watches and restarts. It owns the TUN (named like a kernel device) and is
// configured over its UAPI socket, /var/run/wireguard/<device>.sock.
//   wireguard-go -f weft-wg       (foreground: it is weftd's child)
// Under setpriv --pdeathsig, so it dies with weftd even on kill -9: the device
// lives as long as the agent, like the udp backend's TUN, and a restarted agent
// starts a new one with the same key.
import { type ChildProcess, spawn } from 'node:child_process';
import type { Logger } from '../../lib/log.js';
import type { Link, WgConfig, WgDevice } from '../../netlink/index.js';
import { deleteLink, type ProviderNetlink, type WgProvider } from './provider.js';
import { UapiClient, UapiError } from './uapi.js';

export interface WireguardGoOptions {
  readonly device: string;
  readonly nl: ProviderNetlink;
  readonly log: Logger;
  /** Path of wireguard-go. */
  readonly binary: string;
  /** Path of setpriv (util-linux), for the parent-death signal; without it a killed weftd leaves wireguard-go running. */
  readonly setpriv?: string;
  /** How long wireguard-go may take to answer on its socket. Default 5000 ms. */
  readonly startTimeoutMs?: number;
}

/** Box-drawing lines of the banner Debian's wireguard-go prints at every start. */
const BANNER = /[┌┐└┘│─]/;

export class WireguardGo implements WgProvider {
  readonly impl = 'userspace';
  readonly device: string;
  private readonly uapi: UapiClient;
  private child?: ChildProcess;
  private exited = true;
  private output: string[] = [];
  private stopping = false;

  constructor(private readonly o: WireguardGoOptions) {
    this.device = o.device;
    this.uapi = new UapiClient(o.device);
  }

  alive(): boolean {
    return !this.exited;
  }

  async up(mtu: number): Promise<Link> {
    const { nl, log, device } = this.o;
    if (!this.exited) await this.stop();
    const old = nl.linkByName(device);
    if (old) {
      if (old.kind === 'tun' && (await this.answers())) {
        throw new Error(`${device}: another wireguard-go serves ${this.uapi.socketPath} (not started by this weftd); stop it first`);
      }
      log.warn('replacing a device that has the WireGuard device\'s name', { device, kind: old.kind ?? 'none' });
      deleteLink(nl, old.index);
    }
    await this.start();
    const link = nl.linkByName(device);
    if (!link) throw new Error(`wireguard-go answers on ${this.uapi.socketPath} but there is no device ${device}`);
    if (link.mtu !== mtu) nl.linkSetMtu(link.index, mtu);
    log.info('started wireguard-go', { device, pid: this.child?.pid, mtu, parentDeathSignal: !!this.o.setpriv });
    return link;
  }

  private async answers(): Promise<boolean> {
    try {
      await this.uapi.get();
      return true;
    } catch {
      return false;
    }
  }

  /** Spawns wireguard-go and waits until its socket answers, or fails with what it printed. */
  private async start(): Promise<void> {
    const { binary, setpriv, device, log } = this.o;
    const argv = setpriv ? [setpriv, '--pdeathsig', 'TERM', '--', binary, '-f', device] : [binary, '-f', device];
    this.output = [];
    this.exited = false;
    this.stopping = false;
    const child = spawn(argv[0]!, argv.slice(1), {
      stdio: ['ignore', 'pipe', 'pipe'],
      // Debian's build refuses to run without this when it believes a kernel module could be loaded.
      env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LOG_LEVEL: 'error', WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD: '1' },
    });
    this.child = child;
    const onLine = (line: string) => {
      if (!line.trim()) return;
      this.output.push(line);
      if (this.output.length > 40) this.output.shift();
      if (BANNER.test(line) || /first class support|information on installing|wireguard\.com\/install/.test(line)) log.debug('wireguard-go', { line });
      else log.warn('wireguard-go', { line });
    };
    for (const s of [child.stdout!, child.stderr!]) {
      let buf = '';
      s.setEncoding('utf8');
      s.on('data', (d: string) => {
        buf += d;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          onLine(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
        }
      });
    }
    const exit = new Promise<string>((resolve) => {
      child.once('error', (e) => {
        this.exited = true;
        resolve(`could not start ${argv[0]}: ${e.message}`);
      });
      child.once('exit', (code, signal) => {
        this.exited = true;
        const how = `wireguard-go for ${device} exited (${signal ?? `status ${code}`})`;
        if (!this.stopping) log.error(`${how}; restarting it at the next check`, { output: this.output.slice(-5).join(' | ') });
        resolve(how);
      });
    });
    const deadline = Date.now() + (this.o.startTimeoutMs ?? 5000);
    let last: unknown;
    while (Date.now() < deadline) {
      if (this.exited) throw new Error(`${await exit}: ${this.output.filter((l) => !BANNER.test(l)).slice(-3).join(' | ') || 'no output'}`);
      try {
        await this.uapi.get();
        return;
      } catch (e) {
        last = e;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    await this.stop();
    throw new Error(`wireguard-go for ${device} did not answer on ${this.uapi.socketPath} within ${this.o.startTimeoutMs ?? 5000} ms: ${(last as Error)?.message ?? 'no attempt'}`);
  }

  async set(c: WgConfig): Promise<void> {
    if (this.exited) throw new UapiError(`wireguard-go for ${this.device} is not running`);
    await this.uapi.set(c);
  }

  async get(): Promise<WgDevice> {
    if (this.exited) throw new UapiError(`wireguard-go for ${this.device} is not running`);
    return this.uapi.get();
  }

  /** SIGTERM (wireguard-go removes its device and socket), SIGKILL after 2 s. */
  private async stop(): Promise<void> {
    const c = this.child;
    if (!c || this.exited || c.exitCode !== null || c.signalCode !== null) return;
    this.stopping = true;
    const gone = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGTERM');
    const timer = setTimeout(() => c.kill('SIGKILL'), 2000);
    await gone;
    clearTimeout(timer);
  }

  async close(): Promise<void> {
    await this.stop();
    this.o.log.info('stopped wireguard-go; its device is gone', { device: this.device });
  }
}
