// Links: RTM_NEWLINK / RTM_DELLINK / RTM_GETLINK requests and the Link decoder.
import {
  AF_UNSPEC, IFF_UP, IFINFOMSG_LEN, IFLA_ADDRESS, IFLA_IFNAME, IFLA_INFO_DATA, IFLA_INFO_KIND,
  IFLA_LINK, IFLA_LINK_NETNSID, IFLA_LINKINFO, IFLA_MASTER, IFLA_MTU, IFLA_NET_NS_FD, IFLA_OPERSTATE,
  IFLA_TUN_GROUP, IFLA_TUN_MULTI_QUEUE, IFLA_TUN_OWNER, IFLA_TUN_PERSIST, IFLA_TUN_PI, IFLA_TUN_TYPE,
  IFLA_TUN_VNET_HDR, IFLA_VXLAN_GBP, IFLA_VXLAN_GROUP, IFLA_VXLAN_GROUP6, IFLA_VXLAN_ID,
  IFLA_VXLAN_LEARNING, IFLA_VXLAN_LINK, IFLA_VXLAN_LOCAL, IFLA_VXLAN_LOCAL6, IFLA_VXLAN_PORT,
  IFLA_VXLAN_PORT_RANGE, IFLA_VXLAN_TTL, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, RTM_DELLINK,
  RTM_GETLINK, RTM_NEWLINK, VETH_INFO_PEER,
} from './constants.js';
import { formatIp, parseIp } from '../lib/ip.js';
import { formatMac, parseMac } from '../lib/mac.js';
import { checkIndex, checkUint, type Request } from './request.js';
import type { Link, LinkSpec, TunInfo, VxlanInfo } from './types.js';
import {
  attr, attrFlag, attrNested, attrStr, attrU16BE, attrU32, attrU8, type Attrs, decodeIfInfoMsg,
  encodeIfInfoMsg, type NlMsg, splitBody,
} from './wire.js';

const IFNAMSIZ = 16;

export function checkLinkName(name: string): void {
  if (typeof name !== 'string' || name.length === 0 || Buffer.byteLength(name) >= IFNAMSIZ || /[\s/:]/.test(name) || name === '.' || name === '..') {
    throw new TypeError(`invalid interface name ${JSON.stringify(name)} (1-${IFNAMSIZ - 1} bytes, no whitespace, '/' or ':')`);
  }
}

function vxlanData(s: Extract<LinkSpec, { kind: 'vxlan' }>): Buffer[] {
  checkUint('vxlan vni', s.vni, 0xffffff);
  checkUint('vxlan port', s.port, 0xffff, 1);
  const out: Buffer[] = [];
  // Same order as iproute2 6.1 (ip link add ... type vxlan), so captures compare byte for byte.
  if (s.linkIndex !== undefined) {
    checkIndex('vxlan linkIndex', s.linkIndex);
    out.push(attrU32(IFLA_VXLAN_LINK, s.linkIndex));
  }
  out.push(attrU32(IFLA_VXLAN_ID, s.vni));
  if (s.local !== undefined) {
    const l = parseIp(s.local);
    out.push(attr(l.family === 4 ? IFLA_VXLAN_LOCAL : IFLA_VXLAN_LOCAL6, l.bytes));
  }
  out.push(attrU8(IFLA_VXLAN_LEARNING, s.learning ? 1 : 0));
  if (s.ttl !== undefined) {
    checkUint('vxlan ttl', s.ttl, 255);
    out.push(attrU8(IFLA_VXLAN_TTL, s.ttl));
  }
  out.push(attrU16BE(IFLA_VXLAN_PORT, s.port));
  if (s.gbp) out.push(attrFlag(IFLA_VXLAN_GBP));
  return out;
}

/** Describes a spec the way iproute2 would spell the command. */
export function describeLinkAdd(s: LinkSpec): string {
  let op = `link add ${s.name}`;
  if (s.mtu !== undefined) op += ` mtu ${s.mtu}`;
  if (s.mac !== undefined) op += ` address ${s.mac}`;
  op += ` type ${s.kind}`;
  if (s.kind === 'vxlan') {
    op += ` id ${s.vni} dstport ${s.port}${s.learning ? '' : ' nolearning'}`;
    if (s.local) op += ` local ${s.local}`;
    if (s.linkIndex) op += ` dev ${s.linkIndex}`;
    if (s.ttl !== undefined) op += ` ttl ${s.ttl}`;
    if (s.gbp) op += ' gbp';
  } else if (s.kind === 'veth') {
    op += ` peer name ${s.peerName}`;
    if (s.peerNetns !== undefined) op += ` netns ${s.peerNetns}`;
    else if (s.peerNetnsFd !== undefined) op += ` netns fd ${s.peerNetnsFd}`;
  }
  return op;
}

// ip link add NAME [mtu M] [address MAC] type vxlan|bridge|veth|dummy|wireguard ...
// For veth with peerNetns (a path), the caller resolves it to peerNetnsFd first.
export function linkAddRequest(s: LinkSpec): Request {
  checkLinkName(s.name);
  const attrs: Buffer[] = [attrStr(IFLA_IFNAME, s.name)];
  if (s.mtu !== undefined) {
    checkUint('mtu', s.mtu, 0xffff, 68);
    attrs.push(attrU32(IFLA_MTU, s.mtu));
  }
  if (s.mac !== undefined) attrs.push(attr(IFLA_ADDRESS, parseMac(s.mac)));
  // iproute2 sends the kind without its NUL (addattr_l(..., strlen(type))); the kernel accepts both.
  const info: Buffer[] = [attr(IFLA_INFO_KIND, Buffer.from(s.kind))];
  switch (s.kind) {
    case 'vxlan':
      info.push(attrNested(IFLA_INFO_DATA, ...vxlanData(s)));
      break;
    case 'veth': {
      checkLinkName(s.peerName);
      const peer: Buffer[] = [encodeIfInfoMsg({}), attrStr(IFLA_IFNAME, s.peerName)];
      if (s.mtu !== undefined) peer.push(attrU32(IFLA_MTU, s.mtu));
      if (s.peerNetnsFd !== undefined) {
        checkUint('peerNetnsFd', s.peerNetnsFd, 0x7fffffff);
        peer.push(attrU32(IFLA_NET_NS_FD, s.peerNetnsFd));
      }
      info.push(attrNested(IFLA_INFO_DATA, attrNested(VETH_INFO_PEER, ...peer)));
      break;
    }
    case 'bridge':
    case 'dummy':
    case 'wireguard':
      break;
    default:
      throw new TypeError(`unsupported link kind ${JSON.stringify((s as { kind: unknown }).kind)}`);
  }
  attrs.push(attrNested(IFLA_LINKINFO, ...info));
  return {
    type: RTM_NEWLINK,
    flags: NLM_F_CREATE | NLM_F_EXCL,
    body: Buffer.concat([encodeIfInfoMsg({ family: AF_UNSPEC }), ...attrs]),
    op: describeLinkAdd(s),
  };
}

/** A request about one link, by index (ifinfomsg) or by name (IFLA_IFNAME). */
function linkRequest(type: number, verb: string, nameOrIndex: string | number): Request {
  if (typeof nameOrIndex === 'number') {
    checkIndex('link index', nameOrIndex);
    return { type, flags: 0, body: encodeIfInfoMsg({ index: nameOrIndex }), op: `link ${verb} dev ${nameOrIndex}` };
  }
  checkLinkName(nameOrIndex);
  return { type, flags: 0, body: Buffer.concat([encodeIfInfoMsg({}), attrStr(IFLA_IFNAME, nameOrIndex)]), op: `link ${verb} ${nameOrIndex}` };
}

// ip link del NAME | ip link del dev INDEX
export function linkDelRequest(nameOrIndex: string | number): Request {
  return linkRequest(RTM_DELLINK, 'del', nameOrIndex);
}

// ip link show [NAME | dev INDEX]
export function linkGetRequest(nameOrIndex: string | number): Request {
  return linkRequest(RTM_GETLINK, 'show', nameOrIndex);
}

export function linkDumpRequest(): Request {
  return { type: RTM_GETLINK, flags: NLM_F_DUMP, body: encodeIfInfoMsg({ family: AF_UNSPEC }), op: 'link show' };
}

// ip link set dev INDEX up|down
export function linkSetUpRequest(index: number, up: boolean): Request {
  checkIndex('link index', index);
  return {
    type: RTM_NEWLINK, flags: 0,
    body: encodeIfInfoMsg({ index, flags: up ? IFF_UP : 0, change: IFF_UP }),
    op: `link set dev ${index} ${up ? 'up' : 'down'}`,
  };
}

// ip link set dev INDEX mtu MTU
export function linkSetMtuRequest(index: number, mtu: number): Request {
  checkIndex('link index', index);
  checkUint('mtu', mtu, 0xffff, 68);
  return { type: RTM_NEWLINK, flags: 0, body: Buffer.concat([encodeIfInfoMsg({ index }), attrU32(IFLA_MTU, mtu)]), op: `link set dev ${index} mtu ${mtu}` };
}

// ip link set dev INDEX master MASTER   (masterIndex 0: ip link set dev INDEX nomaster)
export function linkSetMasterRequest(index: number, masterIndex: number): Request {
  checkIndex('link index', index);
  if (masterIndex !== 0) checkIndex('master index', masterIndex);
  return {
    type: RTM_NEWLINK, flags: 0,
    body: Buffer.concat([encodeIfInfoMsg({ index }), attrU32(IFLA_MASTER, masterIndex)]),
    op: masterIndex === 0 ? `link set dev ${index} nomaster` : `link set dev ${index} master ${masterIndex}`,
  };
}

// ip link set dev INDEX address MAC
export function linkSetHwAddrRequest(index: number, mac: string): Request {
  checkIndex('link index', index);
  return {
    type: RTM_NEWLINK, flags: 0,
    body: Buffer.concat([encodeIfInfoMsg({ index }), attr(IFLA_ADDRESS, parseMac(mac))]),
    op: `link set dev ${index} address ${mac}`,
  };
}

function decodeVxlan(d: Attrs): VxlanInfo {
  const v: VxlanInfo = { id: d.u32(IFLA_VXLAN_ID) ?? 0, port: d.u16be(IFLA_VXLAN_PORT) ?? 0, learning: (d.u8(IFLA_VXLAN_LEARNING) ?? 1) !== 0 };
  const local = d.get(IFLA_VXLAN_LOCAL) ?? d.get(IFLA_VXLAN_LOCAL6);
  if (local && (local.length === 4 || local.length === 16)) v.local = formatIp(local);
  const group = d.get(IFLA_VXLAN_GROUP) ?? d.get(IFLA_VXLAN_GROUP6);
  if (group && (group.length === 4 || group.length === 16) && group.some((x) => x !== 0)) v.group = formatIp(group);
  const link = d.u32(IFLA_VXLAN_LINK);
  if (link) v.linkIndex = link;
  if (d.has(IFLA_VXLAN_GBP)) v.gbp = true;
  const ttl = d.u8(IFLA_VXLAN_TTL);
  if (ttl !== undefined) v.ttl = ttl;
  const range = d.get(IFLA_VXLAN_PORT_RANGE);
  if (range && range.length >= 4) {
    v.srcPortMin = range.readUInt16BE(0);
    v.srcPortMax = range.readUInt16BE(2);
  }
  return v;
}

function decodeTun(d: Attrs): TunInfo {
  const flag = (t: number) => (d.u8(t) ?? 0) !== 0;
  // IFF_TUN = 1, IFF_TAP = 2 in IFLA_TUN_TYPE.
  const t: TunInfo = {
    type: d.u8(IFLA_TUN_TYPE) === 2 ? 'tap' : 'tun',
    pi: flag(IFLA_TUN_PI), vnetHdr: flag(IFLA_TUN_VNET_HDR), persist: flag(IFLA_TUN_PERSIST), multiQueue: flag(IFLA_TUN_MULTI_QUEUE),
  };
  const owner = d.u32(IFLA_TUN_OWNER);
  if (owner !== undefined && owner !== 0xffffffff) t.owner = owner;
  const group = d.u32(IFLA_TUN_GROUP);
  if (group !== undefined && group !== 0xffffffff) t.group = group;
  return t;
}

/** RTM_NEWLINK / RTM_DELLINK → Link. */
export function decodeLink(m: NlMsg): Link {
  const { fixed, attrs } = splitBody(m, IFINFOMSG_LEN);
  const ifi = decodeIfInfoMsg(fixed);
  const link: Link = {
    index: ifi.index,
    name: attrs.str(IFLA_IFNAME) ?? '',
    mtu: attrs.u32(IFLA_MTU) ?? 0,
    flags: ifi.flags,
    up: (ifi.flags & IFF_UP) !== 0,
  };
  const oper = attrs.u8(IFLA_OPERSTATE);
  if (oper !== undefined) link.operState = oper;
  const mac = attrs.get(IFLA_ADDRESS);
  if (mac && mac.length > 0) link.mac = formatMac(mac);
  const master = attrs.u32(IFLA_MASTER);
  if (master) link.masterIndex = master;
  const lower = attrs.u32(IFLA_LINK);
  if (lower !== undefined && lower !== ifi.index) link.linkIndex = lower;
  const nsid = attrs.s32(IFLA_LINK_NETNSID);
  if (nsid !== undefined) link.linkNetnsId = nsid;
  const info = attrs.nested(IFLA_LINKINFO);
  if (info) {
    const kind = info.str(IFLA_INFO_KIND);
    if (kind) link.kind = kind;
    const data = info.nested(IFLA_INFO_DATA);
    if (data && kind === 'vxlan') link.vxlan = decodeVxlan(data);
    if (data && kind === 'tun') link.tun = decodeTun(data);
  }
  return link;
}
