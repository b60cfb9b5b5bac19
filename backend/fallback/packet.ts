// The fallback's probes on the wire. A probe is a small UDP message from this
// host's VTEP address to the peer's (<subnet>.0, port Fallback.Port), carried
// the way each path carries overlay packets, so it meets the same firewalls
// and is unwrapped by the same code at the peer:
//   vxlan: outer UDP to <peer PublicIP>:8472 | VXLAN header (VNI) | Ethernet
//          (peer VtepMAC <- own VtepMAC) | IPv4 | UDP | message
//          -> decapsulated by the peer kernel's VXLAN device
//   udp:   outer UDP to <peer PublicIP>:8285 | IPv4 | UDP | message
//          -> checked and written into the TUN by the peer's udp forwarder
// The peer's kernel delivers the inner datagram to its prober, which answers
// with an ack over the same path: a probe succeeds only when the path works
// both ways. Probes are padded to the overlay MTU, so a path that drops
// full-size packets fails its probes too (Weave's fastdp heartbeat does the same).
//   message: "WFTP" | version 1 | kind (1 probe, 2 ack) | path (1 vxlan, 2 udp) | 0
//            | nonce (8 bytes, the prober's, echoed in acks) | seq (u32) | zero padding
import { parseIP4 } from '../../lib/ip.js';
import { internetChecksum } from '../udp/packet.js';

export type ProbePath = 'vxlan' | 'udp';
export const PROBE_PATHS: readonly ProbePath[] = ['vxlan', 'udp'];

export interface ProbeMessage {
  readonly kind: 'probe' | 'ack';
  readonly path: ProbePath;
  /** 8 bytes: the prober's per-start nonce (acks echo the probe's). */
  readonly nonce: Buffer;
  readonly seq: number;
}

const MAGIC = 0x57465450; // "WFTP"
export const MESSAGE_LEN = 24;
const IPV4_UDP_HEADERS = 28;
const VXLAN_ETH = 8 + 14;

export function encodeMessage(m: ProbeMessage, padTo = MESSAGE_LEN): Buffer {
  const b = Buffer.alloc(Math.max(MESSAGE_LEN, padTo));
  b.writeUInt32BE(MAGIC, 0);
  b[4] = 1;
  b[5] = m.kind === 'probe' ? 1 : 2;
  b[6] = m.path === 'vxlan' ? 1 : 2;
  m.nonce.copy(b, 8, 0, 8);
  b.writeUInt32BE(m.seq >>> 0, 16);
  return b;
}

/** The message in a received datagram's payload, or undefined for anything else. */
export function decodeMessage(b: Buffer): ProbeMessage | undefined {
  if (b.length < MESSAGE_LEN || b.readUInt32BE(0) !== MAGIC || b[4] !== 1) return undefined;
  const kind = b[5] === 1 ? 'probe' : b[5] === 2 ? 'ack' : undefined;
  const path = b[6] === 1 ? 'vxlan' : b[6] === 2 ? 'udp' : undefined;
  if (!kind || !path) return undefined;
  return { kind, path, nonce: Buffer.from(b.subarray(8, 16)), seq: b.readUInt32BE(16) };
}

/** An IPv4 packet holding one UDP datagram (TTL 64, DF, both checksums). */
export function ipv4Udp(src: string, dst: string, sport: number, dport: number, payload: Buffer): Buffer {
  const p = Buffer.alloc(IPV4_UDP_HEADERS + payload.length);
  p[0] = 0x45;
  p.writeUInt16BE(p.length, 2);
  p.writeUInt16BE(0x4000, 6); // DF: a full-size probe must not be fragmented
  p[8] = 64;
  p[9] = 17;
  p.writeUInt32BE(parseIP4(src), 12);
  p.writeUInt32BE(parseIP4(dst), 16);
  p.writeUInt16BE(internetChecksum(p, 0, 20), 10);
  p.writeUInt16BE(sport, 20);
  p.writeUInt16BE(dport, 22);
  p.writeUInt16BE(8 + payload.length, 24);
  payload.copy(p, 28);
  // UDP checksum over the pseudo header (src, dst, 0, proto, length) and the datagram.
  const pseudo = Buffer.alloc(12 + 8 + payload.length);
  p.copy(pseudo, 0, 12, 20);
  pseudo[9] = 17;
  pseudo.writeUInt16BE(8 + payload.length, 10);
  p.copy(pseudo, 12, 20);
  p.writeUInt16BE(internetChecksum(pseudo) || 0xffff, 26);
  return p;
}

/** A VXLAN datagram's payload: VXLAN header (I flag, VNI), then the inner Ethernet frame carrying `ip`. */
export function vxlanFrame(vni: number, dstMac: string, srcMac: string, ip: Buffer): Buffer {
  const f = Buffer.alloc(VXLAN_ETH + ip.length);
  f[0] = 0x08;
  f.writeUIntBE(vni, 4, 3);
  Buffer.from(dstMac.replace(/:/g, ''), 'hex').copy(f, 8);
  Buffer.from(srcMac.replace(/:/g, ''), 'hex').copy(f, 14);
  f.writeUInt16BE(0x0800, 20);
  ip.copy(f, VXLAN_ETH);
  return f;
}

/** The payload length that makes the inner IPv4 packet `mtu` bytes long (the overlay MTU). */
export function paddingFor(mtu: number): number {
  return Math.max(MESSAGE_LEN, mtu - IPV4_UDP_HEADERS);
}
