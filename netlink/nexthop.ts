// Nexthop objects (Linux 5.3, linux/nexthop.h): RTM_NEWNEXTHOP / RTM_DELNEXTHOP /
// RTM_GETNEXTHOP requests and the Nexthop decoder.
//   ip nexthop add|replace id N via GW dev INDEX [onlink] proto P
//   ip nexthop del id N
//   ip nexthop show
// A route names its object with RTA_NH_ID (`ip route replace DST nhid N`, route.ts).
// Why weft uses them: the kernel's IPv4 fib_info hash (fib_semantics.c,
// fib_info_hashfn) ignores the gateway, so thousands of `via X dev D onlink`
// routes share one bucket and every insert compares with all others
// (quadratic); a route through a nexthop object is hashed by the object's id.
import {
  AF_INET, AF_INET6, AF_UNSPEC, NHA_BLACKHOLE, NHA_GATEWAY, NHA_GROUP, NHA_ID, NHA_OIF, NHMSG_LEN,
  RTM_DELNEXTHOP, RTM_GETNEXTHOP, RTM_NEWNEXTHOP, RTNH_F_ONLINK, RTPROT_BOOT,
} from './constants.js';
import { type IpFamily, parseIp } from '../lib/ip.js';
import { checkIndex, checkUint, described, dumpRequest, newDelVerbs, type Request } from './request.js';
import type { Nexthop, NexthopSpec, Route } from './types.js';
import { BodyWriter } from './body-writer.js';
import { decodeNhMsg, encodeNhMsg, NHMSG, type NlMsg, splitBody } from './wire.js';

export type NexthopVerb = 'add' | 'replace' | 'del';

const VERB = newDelVerbs(RTM_NEWNEXTHOP, RTM_DELNEXTHOP);

/** iproute2-style text: 'id 7 via 10.244.3.0 dev 2 onlink proto 87'. */
export function describeNexthop(n: NexthopSpec): string {
  let s = `id ${n.id}`;
  if (n.gateway) s += ` via ${n.gateway}`;
  if (n.index !== undefined) s += ` dev ${n.index}`;
  if (n.onlink) s += ' onlink';
  if (n.protocol !== undefined) s += ` proto ${n.protocol}`;
  return s;
}

// ip nexthop add|replace id N [via GW] dev INDEX [onlink] [proto P]; ip nexthop del id N
export function nexthopRequest(verb: NexthopVerb, n: NexthopSpec): Request {
  checkUint('nexthop id', n.id, 0xffffffff, 1);
  const spec = { ...n };
  const describe = () => `nexthop ${verb} ${describeNexthop(spec)}`;
  if (verb === 'del') {
    // As iproute2: the id alone, family unspecified.
    return described(RTM_DELNEXTHOP, 0, BodyWriter.begin(NHMSG, {}).u32(NHA_ID, n.id).done(), describe);
  }
  const gw = n.gateway !== undefined ? parseIp(n.gateway) : undefined;
  const family: IpFamily = gw?.family ?? n.family ?? 4;
  if (n.index === undefined) throw new TypeError(`nexthop ${n.id} needs a device`);
  checkIndex('nexthop index', n.index);
  const protocol = n.protocol ?? RTPROT_BOOT;
  checkUint('nexthop protocol', protocol, 0xff);
  // Attribute order as iproute2 (id, gateway, oif) so captures compare byte for byte.
  const w = BodyWriter.begin(NHMSG, { family: family === 4 ? AF_INET : AF_INET6, protocol, flags: n.onlink ? RTNH_F_ONLINK : 0 }).u32(NHA_ID, n.id);
  if (gw) w.attr(NHA_GATEWAY, gw.bytes);
  w.u32(NHA_OIF, n.index);
  return described(VERB[verb].type, VERB[verb].flags, w.done(), describe);
}

export function nexthopDumpRequest(family?: 4 | 6): Request {
  return dumpRequest(RTM_GETNEXTHOP, (f) => encodeNhMsg({ family: f }), 'nexthop', family);
}

/** RTM_NEWNEXTHOP / RTM_DELNEXTHOP → Nexthop, or undefined for families other than inet/inet6 (groups carry AF_UNSPEC). */
export function decodeNexthop(m: NlMsg): Nexthop | undefined {
  const { fixed, attrs } = splitBody(m, NHMSG_LEN);
  const nh = decodeNhMsg(fixed);
  const group = attrs.has(NHA_GROUP);
  if (nh.family !== AF_INET && nh.family !== AF_INET6 && !(group && nh.family === AF_UNSPEC)) return undefined;
  const id = attrs.u32(NHA_ID);
  if (id === undefined) return undefined;
  const n: Nexthop = {
    id,
    family: nh.family === AF_INET6 ? 6 : 4,
    onlink: (nh.flags & RTNH_F_ONLINK) !== 0,
    protocol: nh.protocol,
    scope: nh.scope,
    flags: nh.flags,
    group,
    blackhole: attrs.has(NHA_BLACKHOLE),
  };
  const gw = attrs.ip(NHA_GATEWAY);
  if (gw) n.gateway = gw;
  const oif = attrs.u32(NHA_OIF);
  if (oif !== undefined) n.index = oif;
  return n;
}

/**
 * Gives each route through an object (nhid) the object's gateway, device and
 * onlink, in place: what the kernel adds to the dump itself only with
 * net.ipv4.nexthop_compat_mode=1. Returns the objects by id (`nexthops` may be that map
 * already: a caller that resolves a long listing part by part).
 */
export function resolveNexthops(routes: Route[], nexthops: readonly Nexthop[] | ReadonlyMap<number, Nexthop>): ReadonlyMap<number, Nexthop> {
  const byId = nexthops instanceof Map ? (nexthops as ReadonlyMap<number, Nexthop>) : new Map((nexthops as readonly Nexthop[]).map((n) => [n.id, n]));
  for (const r of routes) {
    const n = r.nhid === undefined ? undefined : byId.get(r.nhid);
    if (!n) continue;
    if (n.gateway) r.gateway = n.gateway;
    if (n.index !== undefined) r.index = n.index;
    r.onlink = n.onlink;
  }
  return byId;
}
