// Neighbours (ARP/NDP, ip neigh) and bridge FDB entries (bridge fdb): both are
// RTM_NEWNEIGH / RTM_DELNEIGH / RTM_GETNEIGH over struct ndmsg; the family tells them apart.
import {
  AF_BRIDGE, AF_INET, AF_INET6, NDA_DST, NDA_LLADDR, NDA_MASTER, NDA_PORT, NDA_VLAN,
  NDA_VNI, NDMSG_LEN, NLM_F_APPEND, NLM_F_CREATE, NLM_F_DUMP, NLM_F_REPLACE, NTF_MASTER, NTF_SELF,
  NUD_PERMANENT, RTM_DELNEIGH, RTM_GETNEIGH, RTM_NEWNEIGH,
} from './constants.js';
import { formatIp, parseIp } from '../lib/ip.js';
import { formatMac, parseMac } from '../lib/mac.js';
import { checkIndex, checkUint, described, dumpRequest, type Request } from './request.js';
import type { Fdb, FdbSpec, Neigh, NeighSpec } from './types.js';
import { BodyWriter } from './body-writer.js';
import { decodeNdMsg, encodeNdMsg, NDMSG, type NlMsg, splitBody } from './wire.js';

const NUD_NAMES: [number, string][] = [
  [0x80, 'permanent'], [0x40, 'noarp'], [0x02, 'reachable'], [0x04, 'stale'], [0x08, 'delay'], [0x10, 'probe'],
  [0x20, 'failed'], [0x01, 'incomplete'],
];
export function describeNud(state: number): string {
  const names = NUD_NAMES.filter(([bit]) => state & bit).map(([, n]) => n);
  return names.length ? names.join(' ') : 'none';
}

// ip neigh replace IP lladdr MAC dev INDEX nud permanent
export function neighReplaceRequest(n: NeighSpec): Request {
  checkIndex('neigh index', n.index);
  const ip = parseIp(n.ip);
  const state = n.state ?? NUD_PERMANENT;
  checkUint('neigh state', state, 0xffff);
  const body = BodyWriter.begin(NDMSG, { family: ip.family === 4 ? AF_INET : AF_INET6, index: n.index, state })
    .attr(NDA_DST, ip.bytes)
    .attr(NDA_LLADDR, parseMac(n.mac))
    .done();
  const { index, mac, ip: ipText } = n;
  return described(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, body, () => `neigh replace ${ipText} lladdr ${mac} dev ${index} nud ${describeNud(state)}`);
}

// ip neigh del IP dev INDEX
export function neighDelRequest(n: { index: number; ip: string; mac?: string; state?: number }): Request {
  checkIndex('neigh index', n.index);
  const ip = parseIp(n.ip);
  // iproute2 sends nud permanent on delete too; the kernel ignores the state here.
  const body = BodyWriter.begin(NDMSG, { family: ip.family === 4 ? AF_INET : AF_INET6, index: n.index, state: NUD_PERMANENT }).attr(NDA_DST, ip.bytes).done();
  const { index, ip: ipText } = n;
  return described(RTM_DELNEIGH, 0, body, () => `neigh del ${ipText} dev ${index}`);
}

export function neighDumpRequest(family?: 4 | 6): Request {
  return dumpRequest(RTM_GETNEIGH, (f) => encodeNdMsg({ family: f }), 'neigh', family);
}

/** RTM_NEWNEIGH / RTM_DELNEIGH of family inet/inet6 → Neigh (undefined for other families). */
export function decodeNeigh(m: NlMsg): Neigh | undefined {
  const { fixed, attrs } = splitBody(m, NDMSG_LEN);
  const nd = decodeNdMsg(fixed);
  if (nd.family !== AF_INET && nd.family !== AF_INET6) return undefined;
  const dst = attrs.ip(NDA_DST);
  if (!dst) return undefined;
  const n: Neigh = { index: nd.index, family: nd.family === AF_INET ? 4 : 6, ip: dst, state: nd.state, flags: nd.flags, type: nd.type };
  const ll = attrs.get(NDA_LLADDR);
  if (ll && ll.length > 0) n.mac = formatMac(ll);
  return n;
}

export type FdbVerb = 'append' | 'replace' | 'del';

const FDB_VERB: Record<FdbVerb, { type: number; flags: number }> = {
  append: { type: RTM_NEWNEIGH, flags: NLM_F_CREATE | NLM_F_APPEND },
  replace: { type: RTM_NEWNEIGH, flags: NLM_F_CREATE | NLM_F_REPLACE },
  del: { type: RTM_DELNEIGH, flags: 0 },
};

// bridge fdb append|replace|del MAC dev INDEX [dst IP] [port P] [vni V] [vlan V] self|master [permanent]
export function fdbRequest(verb: FdbVerb, f: FdbSpec): Request {
  checkIndex('fdb index', f.index);
  const self = f.self ?? true;
  const master = f.master ?? false;
  const state = f.state ?? NUD_PERMANENT;
  checkUint('fdb state', state, 0xffff);
  const mac = parseMac(f.mac);
  const dst = f.dst !== undefined ? parseIp(f.dst) : undefined;
  const { vlan, port, vni, dst: dstText } = f;
  if (vlan !== undefined) checkUint('fdb vlan', vlan, 4094, 1);
  if (port !== undefined) checkUint('fdb port', port, 0xffff, 1);
  if (vni !== undefined) checkUint('fdb vni', vni, 0xffffff);
  const w = BodyWriter.begin(NDMSG, { family: AF_BRIDGE, index: f.index, state, flags: (self ? NTF_SELF : 0) | (master ? NTF_MASTER : 0) }).attr(NDA_LLADDR, mac);
  if (dst) w.attr(NDA_DST, dst.bytes);
  if (vlan !== undefined) w.u16(NDA_VLAN, vlan);
  if (port !== undefined) w.u16be(NDA_PORT, port);
  if (vni !== undefined) w.u32(NDA_VNI, vni);
  const macText = f.mac;
  const index = f.index;
  return described(FDB_VERB[verb].type, FDB_VERB[verb].flags, w.done(), () => {
    let op = `fdb ${verb} ${macText} dev ${index}`;
    if (dstText !== undefined) op += ` dst ${dstText}`;
    if (vlan !== undefined) op += ` vlan ${vlan}`;
    if (port !== undefined) op += ` port ${port}`;
    if (vni !== undefined) op += ` vni ${vni}`;
    if (self) op += ' self';
    if (master) op += ' master';
    if (verb !== 'del') op += ` ${describeNud(state)}`;
    return op;
  });
}

export function fdbDumpRequest(): Request {
  return { type: RTM_GETNEIGH, flags: NLM_F_DUMP, body: encodeNdMsg({ family: AF_BRIDGE }), op: 'fdb show' };
}

/** RTM_NEWNEIGH / RTM_DELNEIGH of family AF_BRIDGE → Fdb (undefined for other families). */
export function decodeFdb(m: NlMsg): Fdb | undefined {
  const { fixed, attrs } = splitBody(m, NDMSG_LEN);
  const nd = decodeNdMsg(fixed);
  if (nd.family !== AF_BRIDGE) return undefined;
  const ll = attrs.get(NDA_LLADDR);
  if (!ll) return undefined;
  const f: Fdb = {
    index: nd.index, mac: formatMac(ll), state: nd.state, flags: nd.flags,
    self: (nd.flags & NTF_SELF) !== 0, master: (nd.flags & NTF_MASTER) !== 0,
  };
  const dst = attrs.get(NDA_DST);
  if (dst && (dst.length === 4 || dst.length === 16)) f.dst = formatIp(dst);
  const masterIndex = attrs.u32(NDA_MASTER);
  if (masterIndex) f.masterIndex = masterIndex;
  const vlan = attrs.u16(NDA_VLAN);
  if (vlan !== undefined) f.vlan = vlan;
  const port = attrs.u16be(NDA_PORT);
  if (port !== undefined) f.port = port;
  const vni = attrs.u32(NDA_VNI);
  if (vni !== undefined) f.vni = vni;
  return f;
}
