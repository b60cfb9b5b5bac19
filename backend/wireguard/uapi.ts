// wireguard-go's configuration protocol (the "cross-platform userspace
// interface" that `wg` speaks): key=value lines over a unix socket,
// /var/run/wireguard/<device>.sock. The same model as the kernel's generic
// netlink (WgConfig, WgDevice from netlink/wireguard.ts); keys in hex.
//   get=1\n\n             -> device and peer lines, then errno=0\n\n
//   set=1\n<lines>\n      -> errno=0\n\n, or errno=-22\n\n (lines before the bad one stay applied)
// Line order is wgctrl's (internal/wguser), so its test vectors compare exactly.
import { connect } from 'node:net';
import { join } from 'node:path';
import { errorKind } from '../../lib/errors.js';
import { Prefix } from '../../lib/ip.js';
import { formatEndpoint, type WgConfig, type WgDevice, type WgEndpoint, type WgPeer } from '../../netlink/index.js';
import { KEY_LEN, publicKeyOf } from './key.js';

export const UAPI_DIR = '/var/run/wireguard';

export const uapiSocketPath = (device: string, dir = UAPI_DIR): string => join(dir, `${device}.sock`);

/** wireguard-go refused a request, or could not be reached. `errno` is its negative errno, when it answered one. */
export class UapiError extends errorKind('EUAPI', true) {
  constructor(message: string, readonly errno?: number) {
    super(message);
  }
}

const hex = (k: Buffer): string => k.toString('hex');

/** The text of a set request. */
export function encodeUapiSet(c: WgConfig): string {
  const l: string[] = ['set=1'];
  if (c.privateKey) l.push(`private_key=${hex(c.privateKey)}`);
  if (c.listenPort !== undefined) l.push(`listen_port=${c.listenPort}`);
  if (c.fwmark !== undefined) l.push(`fwmark=${c.fwmark}`);
  if (c.replacePeers) l.push('replace_peers=true');
  for (const p of c.peers ?? []) {
    if (p.publicKey.length !== KEY_LEN) throw new TypeError(`peer public key must be ${KEY_LEN} bytes, got ${p.publicKey.length}`);
    l.push(`public_key=${hex(p.publicKey)}`);
    if (p.remove) l.push('remove=true');
    if (p.updateOnly) l.push('update_only=true');
    if (p.presharedKey) l.push(`preshared_key=${hex(p.presharedKey)}`);
    if (p.endpoint) l.push(`endpoint=${formatEndpoint(p.endpoint)}`);
    if (p.persistentKeepalive !== undefined) l.push(`persistent_keepalive_interval=${p.persistentKeepalive}`);
    if (p.replaceAllowedIps) l.push('replace_allowed_ips=true');
    for (const ip of p.allowedIps ?? []) l.push(`allowed_ip=${ip}`);
  }
  return `${l.join('\n')}\n\n`;
}

function hexKey(v: string, what: string): Buffer {
  if (!/^[0-9a-fA-F]{64}$/.test(v)) throw new UapiError(`wireguard-go sent a ${what} that is not 64 hex digits`);
  return Buffer.from(v, 'hex');
}

function int(v: string, what: string): number {
  if (!/^\d+$/.test(v)) throw new UapiError(`wireguard-go sent ${what}=${JSON.stringify(v)}, not a number`);
  return Number(v);
}

/** "192.0.2.11:51820" or "[2001:db8::1%eth0]:51820" (the zone is dropped). */
export function parseEndpoint(v: string): WgEndpoint {
  const m = /^(?:\[([0-9a-fA-F:.]+)(?:%[^\]]*)?\]|(\d{1,3}(?:\.\d{1,3}){3})):(\d{1,5})$/.exec(v);
  if (!m) throw new UapiError(`wireguard-go sent endpoint=${JSON.stringify(v)}, not ip:port`);
  return { ip: (m[1] ?? m[2])!.toLowerCase(), port: Number(m[3]) };
}

interface PeerDraft {
  publicKey: Buffer;
  presharedKey?: Buffer;
  endpoint?: WgEndpoint;
  persistentKeepalive: number;
  sec: number;
  nsec: number;
  rxBytes: number;
  txBytes: number;
  allowedIps: Prefix[];
}

const ZERO = Buffer.alloc(KEY_LEN);

/** Parses the answer to get=1 (without or with its final errno line). */
export function parseUapiGet(text: string, name: string): WgDevice {
  let privateKey: Buffer | undefined;
  let listenPort = 0;
  let fwmark = 0;
  const peers: PeerDraft[] = [];
  let peer: PeerDraft | undefined;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new UapiError(`wireguard-go sent a line without '=': ${JSON.stringify(line.slice(0, 80))}`);
    const k = line.slice(0, eq);
    const v = line.slice(eq + 1);
    if (k === 'errno') {
      if (v !== '0') throw new UapiError(`wireguard-go answered get with errno=${v}`, Number(v));
      continue;
    }
    if (k === 'public_key') {
      peer = { publicKey: hexKey(v, 'public_key'), persistentKeepalive: 0, sec: 0, nsec: 0, rxBytes: 0, txBytes: 0, allowedIps: [] };
      peers.push(peer);
      continue;
    }
    if (!peer) {
      if (k === 'private_key') privateKey = hexKey(v, 'private_key');
      else if (k === 'listen_port') listenPort = int(v, k);
      else if (k === 'fwmark') fwmark = int(v, k);
      continue; // newer keys are not ours to reject
    }
    switch (k) {
      case 'preshared_key': {
        const psk = hexKey(v, 'preshared_key');
        if (!psk.equals(ZERO)) peer.presharedKey = psk;
        break;
      }
      case 'endpoint':
        peer.endpoint = parseEndpoint(v);
        break;
      case 'persistent_keepalive_interval':
        peer.persistentKeepalive = int(v, k);
        break;
      case 'last_handshake_time_sec':
        peer.sec = int(v, k);
        break;
      case 'last_handshake_time_nsec':
        peer.nsec = int(v, k);
        break;
      case 'rx_bytes':
        peer.rxBytes = int(v, k);
        break;
      case 'tx_bytes':
        peer.txBytes = int(v, k);
        break;
      case 'allowed_ip':
        try {
          peer.allowedIps.push(Prefix.parse(v, { mask: true }));
        } catch {
          throw new UapiError(`wireguard-go sent allowed_ip=${JSON.stringify(v)}, not a CIDR`);
        }
        break;
      default:
        break; // protocol_version and whatever comes later
    }
  }
  return {
    name,
    ...(privateKey && !privateKey.equals(ZERO) ? { privateKey, publicKey: publicKeyOf(privateKey) } : {}),
    listenPort,
    fwmark,
    peers: peers.map((p): WgPeer => ({
      publicKey: p.publicKey,
      ...(p.presharedKey ? { presharedKey: p.presharedKey } : {}),
      ...(p.endpoint ? { endpoint: p.endpoint } : {}),
      persistentKeepalive: p.persistentKeepalive,
      lastHandshake: p.sec || p.nsec ? new Date(p.sec * 1000 + Math.floor(p.nsec / 1e6)) : null,
      rxBytes: p.rxBytes,
      txBytes: p.txBytes,
      allowedIps: p.allowedIps,
    })),
  };
}

/** The reply's errno line: 0 when the set was applied. */
export function parseUapiErrno(text: string): number {
  const m = /(?:^|\n)errno=(-?\d+)\n/.exec(text);
  if (!m) throw new UapiError(`wireguard-go sent no errno line: ${JSON.stringify(text.slice(0, 80))}`);
  return Number(m[1]);
}

/** A client for one device's socket: one connection per request. */
export class UapiClient {
  constructor(
    readonly device: string,
    readonly socketPath = uapiSocketPath(device),
    private readonly timeoutMs = 5000,
  ) {}

  async get(): Promise<WgDevice> {
    return parseUapiGet(await this.request('get=1\n\n', 'get'), this.device);
  }

  async set(c: WgConfig): Promise<void> {
    const errno = parseUapiErrno(await this.request(encodeUapiSet(c), 'set'));
    if (errno !== 0) throw new UapiError(`wireguard-go ${this.device}: set refused with errno ${errno}${ERRNO_NAMES[-errno] ? ` (${ERRNO_NAMES[-errno]})` : ''}`, errno);
  }

  /** Sends `text`, reads up to the empty line that ends every answer. */
  private request(text: string, what: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const sock = connect(this.socketPath);
      let got = '';
      let done = false;
      const finish = (e?: Error) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        sock.destroy();
        if (e) reject(e);
        else resolve(got);
      };
      const timer = setTimeout(() => finish(new UapiError(`wireguard-go ${this.device}: no answer to ${what} on ${this.socketPath} within ${this.timeoutMs} ms`)), this.timeoutMs);
      sock.setEncoding('utf8');
      sock.on('connect', () => sock.write(text));
      sock.on('data', (d: string) => {
        got += d;
        if (got.endsWith('\n\n')) finish();
      });
      sock.on('end', () => finish(got.endsWith('\n\n') ? undefined : new UapiError(`wireguard-go ${this.device}: the ${what} answer on ${this.socketPath} ended early`)));
      sock.on('error', (e: NodeJS.ErrnoException) => finish(new UapiError(`wireguard-go ${this.device}: ${what} on ${this.socketPath}: ${e.code ?? e.message}${e.code === 'ENOENT' || e.code === 'ECONNREFUSED' ? ' (is wireguard-go running for this device?)' : ''}`)));
    });
  }
}

// The errnos wireguard-go answers with (device/uapi.go).
const ERRNO_NAMES: Record<number, string> = { 5: 'EIO', 22: 'EINVAL', 55: 'ENOBUFS', 71: 'EPROTO', 98: 'EADDRINUSE' };
