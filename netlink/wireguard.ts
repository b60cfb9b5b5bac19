// WireGuard's generic netlink family (linux/wireguard.h): the device and peer
// model (wgctrl's Config / Device, which the userspace UAPI speaks too), the
// WG_CMD_SET_DEVICE / WG_CMD_GET_DEVICE encoders and the GET decoder, and
// WireguardNetlink, the kernel device's operations over a GenlHandle.
//   wg set DEV private-key K listen-port P peer PUB endpoint IP:PORT allowed-ips CIDR ...
//   wg show DEV dump
// Attribute order and batching are wgctrl's (golang.zx2c4.com/wireguard/wgctrl,
// internal/wglinux), so its test vectors compare byte for byte.
import { AF_INET, AF_INET6, NLA_F_NESTED, NLM_F_DUMP, NLMSG_HDRLEN } from './constants.js';
import { NetlinkError, NetlinkParseError } from './errors.js';
import { GENL_HDRLEN, type GenlHandle, genlRequest, splitGenl } from './genl.js';
import { checkLinkName } from './link.js';
import type { Request } from './request.js';
import { attr, attrStr, attrU16, attrU32, attrU8, Attrs, type NlMsg } from './wire.js';
import { formatIp, parseIp, Prefix } from '../lib/ip.js';

export const WG_GENL_NAME = 'wireguard';
export const WG_GENL_VERSION = 1;
export const WG_KEY_LEN = 32;

export const WG_CMD_GET_DEVICE = 0;
export const WG_CMD_SET_DEVICE = 1;

export const WGDEVICE_F_REPLACE_PEERS = 1 << 0;
export const WGDEVICE_A_IFINDEX = 1;
export const WGDEVICE_A_IFNAME = 2;
export const WGDEVICE_A_PRIVATE_KEY = 3;
export const WGDEVICE_A_PUBLIC_KEY = 4;
export const WGDEVICE_A_FLAGS = 5;
export const WGDEVICE_A_LISTEN_PORT = 6;
export const WGDEVICE_A_FWMARK = 7;
export const WGDEVICE_A_PEERS = 8;

export const WGPEER_F_REMOVE_ME = 1 << 0;
export const WGPEER_F_REPLACE_ALLOWEDIPS = 1 << 1;
export const WGPEER_F_UPDATE_ONLY = 1 << 2;
export const WGPEER_A_PUBLIC_KEY = 1;
export const WGPEER_A_PRESHARED_KEY = 2;
export const WGPEER_A_FLAGS = 3;
export const WGPEER_A_ENDPOINT = 4;
export const WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL = 5;
export const WGPEER_A_LAST_HANDSHAKE_TIME = 6;
export const WGPEER_A_RX_BYTES = 7;
export const WGPEER_A_TX_BYTES = 8;
export const WGPEER_A_ALLOWEDIPS = 9;
export const WGPEER_A_PROTOCOL_VERSION = 10;

export const WGALLOWEDIP_A_FAMILY = 1;
export const WGALLOWEDIP_A_IPADDR = 2;
export const WGALLOWEDIP_A_CIDR_MASK = 3;

/** wgctrl's batching: more peers or allowed IPs than this in one change go one peer per message. */
const PEER_BATCH = 32;
const IP_BATCH = 256;

export interface WgEndpoint {
  readonly ip: string;
  readonly port: number;
}

/** One peer's change (wgctrl's PeerConfig): unset fields are left as the device has them. */
export interface WgPeerConfig {
  readonly publicKey: Buffer;
  readonly remove?: boolean;
  /** Change the peer only if it exists. */
  readonly updateOnly?: boolean;
  /** 32 bytes; all zeros removes it. */
  readonly presharedKey?: Buffer;
  readonly endpoint?: WgEndpoint;
  /** Seconds, 0 = off. Turning it on sends a keepalive at once (and so a handshake). */
  readonly persistentKeepalive?: number;
  readonly replaceAllowedIps?: boolean;
  readonly allowedIps?: readonly Prefix[];
}

/** A change to a device (wgctrl's Config). */
export interface WgConfig {
  readonly privateKey?: Buffer;
  readonly listenPort?: number;
  readonly fwmark?: number;
  readonly replacePeers?: boolean;
  readonly peers?: readonly WgPeerConfig[];
}

export interface WgPeer {
  readonly publicKey: Buffer;
  /** undefined when the peer has none (all zeros on the wire). */
  readonly presharedKey?: Buffer;
  readonly endpoint?: WgEndpoint;
  readonly persistentKeepalive: number;
  /** null: never. */
  readonly lastHandshake: Date | null;
  readonly rxBytes: number;
  readonly txBytes: number;
  readonly allowedIps: readonly Prefix[];
}

/** A device as `wg show DEV dump` sees it. */
export interface WgDevice {
  readonly name: string;
  readonly privateKey?: Buffer;
  readonly publicKey?: Buffer;
  readonly listenPort: number;
  readonly fwmark: number;
  readonly peers: readonly WgPeer[];
}

const nest = (type: number, children: readonly Buffer[]): Buffer => attr(type | NLA_F_NESTED, Buffer.concat(children));

function checkKey(what: string, k: Buffer): void {
  if (!Buffer.isBuffer(k) || k.length !== WG_KEY_LEN) throw new TypeError(`${what} must be ${WG_KEY_LEN} bytes, got ${Buffer.isBuffer(k) ? k.length : typeof k}`);
}

function checkPort(what: string, p: number): void {
  if (!Number.isInteger(p) || p < 0 || p > 0xffff) throw new TypeError(`${what} must be an integer in 0..65535, got ${p}`);
}

/** struct sockaddr_in (16 bytes) or sockaddr_in6 (28 bytes): family host order, port big-endian. */
export function encodeSockaddr(ep: WgEndpoint): Buffer {
  checkPort('endpoint port', ep.port);
  const ip = parseIp(ep.ip);
  const b = Buffer.alloc(ip.family === 4 ? 16 : 28);
  b.writeUInt16LE(ip.family === 4 ? AF_INET : AF_INET6, 0);
  b.writeUInt16BE(ep.port, 2);
  Buffer.from(ip.bytes).copy(b, ip.family === 4 ? 4 : 8);
  return b;
}

export function decodeSockaddr(b: Buffer): WgEndpoint | undefined {
  if (b.length < 2) throw new NetlinkParseError(`endpoint of ${b.length} bytes`, 0);
  const family = b.readUInt16LE(0);
  if (family === AF_INET && b.length >= 8) return { ip: formatIp(b.subarray(4, 8)), port: b.readUInt16BE(2) };
  if (family === AF_INET6 && b.length >= 24) return { ip: formatIp(b.subarray(8, 24)), port: b.readUInt16BE(2) };
  if (family === 0) return undefined;
  throw new NetlinkParseError(`endpoint of family ${family} and ${b.length} bytes`, 0);
}

function encodeAllowedIps(ips: readonly Prefix[]): Buffer {
  return nest(WGPEER_A_ALLOWEDIPS, ips.map((p, i) => {
    const bytes = Buffer.from(parseIp(p.networkAddress).bytes);
    return nest(i, [attrU16(WGALLOWEDIP_A_FAMILY, p.family === 4 ? AF_INET : AF_INET6), attr(WGALLOWEDIP_A_IPADDR, bytes), attrU8(WGALLOWEDIP_A_CIDR_MASK, p.prefixLen)]);
  }));
}

function encodePeer(p: WgPeerConfig, index: number): Buffer {
  checkKey('peer public key', p.publicKey);
  const a: Buffer[] = [attr(WGPEER_A_PUBLIC_KEY, p.publicKey)];
  const flags = (p.remove ? WGPEER_F_REMOVE_ME : 0) | (p.replaceAllowedIps ? WGPEER_F_REPLACE_ALLOWEDIPS : 0) | (p.updateOnly ? WGPEER_F_UPDATE_ONLY : 0);
  if (flags) a.push(attrU32(WGPEER_A_FLAGS, flags));
  if (p.presharedKey) {
    checkKey('preshared key', p.presharedKey);
    a.push(attr(WGPEER_A_PRESHARED_KEY, p.presharedKey));
  }
  if (p.endpoint) a.push(attr(WGPEER_A_ENDPOINT, encodeSockaddr(p.endpoint)));
  if (p.persistentKeepalive !== undefined) {
    checkPort('persistent keepalive', p.persistentKeepalive);
    a.push(attrU16(WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, p.persistentKeepalive));
  }
  if (p.allowedIps?.length) a.push(encodeAllowedIps(p.allowedIps));
  return nest(index, a);
}

function describeSet(ifname: string, c: WgConfig): string {
  let s = `wg set ${ifname}`;
  if (c.privateKey) s += ' private-key (hidden)';
  if (c.listenPort !== undefined) s += ` listen-port ${c.listenPort}`;
  if (c.fwmark !== undefined) s += ` fwmark ${c.fwmark}`;
  if (c.replacePeers) s += ' replace-peers';
  const peers = c.peers ?? [];
  for (const p of peers.slice(0, 3)) {
    s += ` peer ${p.publicKey.toString('base64')}${p.remove ? ' remove' : ''}`;
    if (p.endpoint) s += ` endpoint ${formatEndpoint(p.endpoint)}`;
    if (p.allowedIps?.length) s += ` allowed-ips ${p.allowedIps.join(',')}`;
  }
  if (peers.length > 3) s += ` (+${peers.length - 3} peers)`;
  return s;
}

/** "192.0.2.11:51820", "[2001:db8::1]:51821". */
export function formatEndpoint(ep: WgEndpoint): string {
  return ep.ip.includes(':') ? `[${ep.ip}]:${ep.port}` : `${ep.ip}:${ep.port}`;
}

function needsBatches(c: WgConfig): boolean {
  const peers = c.peers ?? [];
  return peers.length > PEER_BATCH || peers.reduce((n, p) => n + (p.allowedIps?.length ?? 0), 0) > IP_BATCH;
}

/** wgctrl's buildBatches: one peer (and at most 256 of its allowed IPs) per message; replace flags only in the first. */
function batches(c: WgConfig): WgConfig[] {
  if (!needsBatches(c)) return [c];
  const { peers = [], ...base } = c;
  const out: WgConfig[] = [];
  const seen = new Set<string>();
  for (const p of peers) {
    const ips = [...(p.allowedIps ?? [])];
    do {
      const chunk = ips.splice(0, IP_BATCH);
      const first = !seen.has(p.publicKey.toString('hex'));
      seen.add(p.publicKey.toString('hex'));
      const pc: WgPeerConfig = {
        publicKey: p.publicKey,
        ...(p.updateOnly ? { updateOnly: true } : {}),
        ...(p.remove ? { remove: true } : {}),
        allowedIps: chunk,
        ...(first && p.presharedKey ? { presharedKey: p.presharedKey } : {}),
        ...(first && p.endpoint ? { endpoint: p.endpoint } : {}),
        ...(first && p.persistentKeepalive !== undefined ? { persistentKeepalive: p.persistentKeepalive } : {}),
        ...(first && p.replaceAllowedIps ? { replaceAllowedIps: true } : {}),
      };
      out.push({ ...base, ...(out.length > 0 ? { replacePeers: false } : {}), peers: [pc] });
    } while (ips.length > 0);
  }
  return out;
}

/** WG_CMD_SET_DEVICE messages for one change, in wgctrl's attribute order (several when the change is large). */
export function wgSetRequests(familyId: number, ifname: string, c: WgConfig): Request[] {
  checkLinkName(ifname);
  const op = describeSet(ifname, c);
  return batches(c).map((b) => {
    const a: Buffer[] = [attrStr(WGDEVICE_A_IFNAME, ifname)];
    if (b.privateKey) {
      checkKey('private key', b.privateKey);
      a.push(attr(WGDEVICE_A_PRIVATE_KEY, b.privateKey));
    }
    if (b.listenPort !== undefined) {
      checkPort('listen port', b.listenPort);
      a.push(attrU16(WGDEVICE_A_LISTEN_PORT, b.listenPort));
    }
    if (b.fwmark !== undefined) a.push(attrU32(WGDEVICE_A_FWMARK, b.fwmark));
    if (b.replacePeers) a.push(attrU32(WGDEVICE_A_FLAGS, WGDEVICE_F_REPLACE_PEERS));
    if (b.peers?.length) a.push(nest(WGDEVICE_A_PEERS, b.peers.map(encodePeer)));
    return genlRequest(familyId, WG_CMD_SET_DEVICE, WG_GENL_VERSION, 0, a, op);
  });
}

// wg show DEV dump
export function wgGetRequest(familyId: number, ifname: string): Request {
  checkLinkName(ifname);
  return genlRequest(familyId, WG_CMD_GET_DEVICE, WG_GENL_VERSION, NLM_F_DUMP, [attrStr(WGDEVICE_A_IFNAME, ifname)], `wg show ${ifname}`);
}

const ZERO_KEY = Buffer.alloc(WG_KEY_LEN);

function key(a: Attrs, type: number, what: string): Buffer | undefined {
  const d = a.get(type);
  if (d === undefined) return undefined;
  if (d.length !== WG_KEY_LEN) throw new NetlinkParseError(`${what} has ${d.length} bytes, expected ${WG_KEY_LEN}`, NLMSG_HDRLEN + GENL_HDRLEN);
  return Buffer.from(d);
}

function decodeAllowedIp(a: Attrs): Prefix {
  const family = a.u16(WGALLOWEDIP_A_FAMILY);
  const ip = a.get(WGALLOWEDIP_A_IPADDR);
  const mask = a.u8(WGALLOWEDIP_A_CIDR_MASK);
  if (ip === undefined || mask === undefined || (family !== AF_INET && family !== AF_INET6) || ip.length !== (family === AF_INET ? 4 : 16)) {
    throw new NetlinkParseError(`allowed IP with family ${family}, ${ip?.length ?? 'no'} address bytes, mask ${mask}`, NLMSG_HDRLEN + GENL_HDRLEN);
  }
  return Prefix.parse(`${formatIp(ip)}/${mask}`, { mask: true });
}

function decodePeer(a: Attrs): WgPeer & { allowedIps: Prefix[] } {
  const publicKey = key(a, WGPEER_A_PUBLIC_KEY, 'peer public key');
  if (!publicKey) throw new NetlinkParseError('peer without WGPEER_A_PUBLIC_KEY', NLMSG_HDRLEN + GENL_HDRLEN);
  const psk = key(a, WGPEER_A_PRESHARED_KEY, 'preshared key');
  const ep = a.get(WGPEER_A_ENDPOINT);
  const endpoint = ep ? decodeSockaddr(ep) : undefined;
  const ts = a.get(WGPEER_A_LAST_HANDSHAKE_TIME);
  let lastHandshake: Date | null = null;
  if (ts && ts.length >= 16) {
    const sec = Number(ts.readBigInt64LE(0));
    const nsec = Number(ts.readBigInt64LE(8));
    if (sec !== 0 || nsec !== 0) lastHandshake = new Date(sec * 1000 + Math.floor(nsec / 1e6));
  }
  const u64 = (t: number) => {
    const d = a.get(t);
    return d && d.length >= 8 ? Number(d.readBigUInt64LE(0)) : 0;
  };
  const ips = a.nested(WGPEER_A_ALLOWEDIPS);
  return {
    publicKey,
    ...(psk && !psk.equals(ZERO_KEY) ? { presharedKey: psk } : {}),
    ...(endpoint ? { endpoint } : {}),
    persistentKeepalive: a.u16(WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL) ?? 0,
    lastHandshake,
    rxBytes: u64(WGPEER_A_RX_BYTES),
    txBytes: u64(WGPEER_A_TX_BYTES),
    allowedIps: ips ? ips.list.map((x) => decodeAllowedIp(Attrs.parse(x.data))) : [],
  };
}

/**
 * The answer to wgGetRequest. The kernel splits a large device over several
 * messages; a peer whose allowed IPs did not fit is repeated (same public key)
 * at the start of the next one, and its allowed IPs are merged here (as wgctrl).
 */
export function decodeWgDevice(msgs: readonly NlMsg[]): WgDevice {
  if (msgs.length === 0) throw new NetlinkParseError('no WG_CMD_GET_DEVICE message in the answer', NLMSG_HDRLEN);
  let dev: { name: string; privateKey?: Buffer; publicKey?: Buffer; listenPort: number; fwmark: number } | undefined;
  const peers: Array<WgPeer & { allowedIps: Prefix[] }> = [];
  const byKey = new Map<string, number>();
  for (const m of msgs) {
    const { attrs } = splitGenl(m);
    if (!dev) {
      const privateKey = key(attrs, WGDEVICE_A_PRIVATE_KEY, 'private key');
      const publicKey = key(attrs, WGDEVICE_A_PUBLIC_KEY, 'public key');
      dev = {
        name: attrs.str(WGDEVICE_A_IFNAME) ?? '',
        ...(privateKey && !privateKey.equals(ZERO_KEY) ? { privateKey } : {}),
        ...(publicKey && !publicKey.equals(ZERO_KEY) ? { publicKey } : {}),
        listenPort: attrs.u16(WGDEVICE_A_LISTEN_PORT) ?? 0,
        fwmark: attrs.u32(WGDEVICE_A_FWMARK) ?? 0,
      };
    }
    for (const p of attrs.nested(WGDEVICE_A_PEERS)?.list ?? []) {
      const peer = decodePeer(Attrs.parse(p.data));
      const k = peer.publicKey.toString('hex');
      const at = byKey.get(k);
      if (at === undefined) {
        byKey.set(k, peers.length);
        peers.push(peer);
      } else {
        peers[at]!.allowedIps.push(...peer.allowedIps);
      }
    }
  }
  return { ...dev!, peers };
}

/** The kernel WireGuard device's operations (wg set / wg show) over generic netlink. */
export class WireguardNetlink {
  constructor(private readonly genl: GenlHandle) {}

  /** The family id; undefined when this kernel has no WireGuard (no module, or not loaded yet). */
  familyId(): number | undefined {
    return this.genl.family(WG_GENL_NAME)?.id;
  }

  private requireFamily(op: string): number {
    const id = this.familyId();
    // EOPNOTSUPP: what the rtnetlink side says for an unknown link kind.
    if (id === undefined) throw new NetlinkError(op, 95, { detail: 'the kernel has no WireGuard generic netlink family' });
    return id;
  }

  // wg set IFNAME ...
  set(ifname: string, c: WgConfig): void {
    const id = this.requireFamily(`wg set ${ifname}`);
    for (const req of wgSetRequests(id, ifname, c)) this.genl.exec(req);
  }

  // wg show IFNAME dump
  get(ifname: string): WgDevice {
    const id = this.requireFamily(`wg show ${ifname}`);
    return decodeWgDevice(this.genl.dump(wgGetRequest(id, ifname)).filter((m) => m.type === id));
  }
}
