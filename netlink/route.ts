// Routes: RTM_NEWROUTE / RTM_DELROUTE / RTM_GETROUTE requests and the Route decoder.
import {
  AF_INET, AF_INET6, RTA_DST,
  RTA_GATEWAY, RTA_METRICS, RTA_NH_ID, RTA_OIF, RTA_PREFSRC, RTA_PRIORITY, RTA_TABLE, RTAX_MTU, RTM_DELROUTE,
  RTM_F_LOOKUP_TABLE, RTM_GETROUTE, RTM_NEWROUTE, RTMSG_LEN, RTN_UNICAST, RTN_UNSPEC, RTNH_F_ONLINK, RTPROT_BOOT,
  RTPROT_UNSPEC, RT_SCOPE_LINK, RT_SCOPE_NOWHERE, RT_SCOPE_UNIVERSE, RT_TABLE_MAIN, RT_TABLE_UNSPEC,
} from './constants.js';
import { type IpFamily, parseCidr, parseIp } from '../lib/ip.js';
import { checkIndex, checkUint, described, dumpRequest, newDelVerbs, type Request } from './request.js';
import type { Route, RouteSpec } from './types.js';
import { BodyWriter } from './body-writer.js';
import { attr, attrNested, attrU32, decodeRtMsg, encodeRtMsg, RTMSG, type NlMsg, splitBody } from './wire.js';

export type RouteVerb = 'add' | 'replace' | 'del';

const VERB = newDelVerbs(RTM_NEWROUTE, RTM_DELROUTE);

/** iproute2-style text of a route spec: '10.244.3.0/24 via 10.244.3.0 dev 7 onlink'. */
export function describeRoute(r: RouteSpec): string {
  let s = r.dst;
  if (r.gateway) s += ` via ${r.gateway}`;
  if (r.index !== undefined) s += ` dev ${r.index}`;
  if (r.table !== undefined && r.table !== RT_TABLE_MAIN) s += ` table ${r.table}`;
  if (r.src) s += ` src ${r.src}`;
  if (r.metric !== undefined) s += ` metric ${r.metric}`;
  if (r.mtu !== undefined) s += ` mtu ${r.mtu}`;
  if (r.protocol !== undefined) s += ` proto ${r.protocol}`;
  if (r.nhid !== undefined) s += ` nhid ${r.nhid}`;
  if (r.onlink) s += ' onlink';
  return s;
}

// ip route add|replace|del DST [via GW] [dev INDEX] [nhid N] [table T] [src S] [metric M] [mtu N] [onlink]
export function routeRequest(verb: RouteVerb, r: RouteSpec): Request {
  const dst = r.dst === 'default' ? undefined : parseCidr(r.dst);
  const gw = r.gateway !== undefined ? parseIp(r.gateway) : undefined;
  const family: IpFamily = dst?.family ?? gw?.family ?? 4;
  if (gw && gw.family !== family) throw new TypeError(`gateway ${r.gateway} is not in the family of ${r.dst}`);
  if (r.index !== undefined) checkIndex('route index', r.index);
  const table = r.table ?? RT_TABLE_MAIN;
  checkUint('table', table, 0xffffffff);
  const del = verb === 'del';
  // iproute2's defaults: deletes match any protocol and scope (NOWHERE acts as wildcard);
  // adds are proto boot, and scope link when there is no gateway (nor nexthop object).
  const protocol = r.protocol ?? (del ? RTPROT_UNSPEC : RTPROT_BOOT);
  const scope = r.scope ?? (del ? RT_SCOPE_NOWHERE : gw || r.nhid !== undefined ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK);
  const type = r.type ?? (del ? RTN_UNSPEC : RTN_UNICAST);
  // Checked before the body is written.
  if (r.nhid !== undefined) checkUint('route nhid', r.nhid, 0xffffffff, 1);
  const src = r.src !== undefined ? parseIp(r.src) : undefined;
  if (src && src.family !== family) throw new TypeError(`src ${r.src} is not in the family of ${r.dst}`);
  if (r.metric !== undefined) checkUint('metric', r.metric, 0xffffffff);
  if (r.mtu !== undefined) checkUint('route mtu', r.mtu, 0xffff, 68);
  const w = BodyWriter.begin(RTMSG, {
    family: family === 4 ? AF_INET : AF_INET6,
    dstLen: dst?.prefixLen ?? 0,
    table: table < 256 ? table : RT_TABLE_UNSPEC,
    protocol, scope, type,
    flags: r.onlink ? RTNH_F_ONLINK : 0,
  });
  // Attribute order as iproute2 (dst, gateway, oif) so captures compare byte for byte.
  if (dst) w.attr(RTA_DST, dst.bytes);
  if (gw) w.attr(RTA_GATEWAY, gw.bytes);
  if (r.index !== undefined) w.u32(RTA_OIF, r.index);
  if (r.nhid !== undefined) w.u32(RTA_NH_ID, r.nhid);
  if (src) w.attr(RTA_PREFSRC, src.bytes);
  if (r.metric !== undefined) w.u32(RTA_PRIORITY, r.metric);
  if (table >= 256) w.u32(RTA_TABLE, table);
  if (r.mtu !== undefined) w.raw(attrNested(RTA_METRICS, attrU32(RTAX_MTU, r.mtu)));
  const spec = { ...r };
  return described(VERB[verb].type, VERB[verb].flags, w.done(), () => `route ${verb} ${describeRoute(spec)}`);
}

// ip route get ADDRESS: the kernel's answer to "how would a packet to ADDRESS leave?"
// (RTM_F_LOOKUP_TABLE, as vishvananda/netlink's RouteGet, which flannel's DirectRouting uses)
export function routeGetRequest(address: string): Request {
  const a = parseIp(address);
  const fixed = encodeRtMsg({ family: a.family === 4 ? AF_INET : AF_INET6, dstLen: a.family === 4 ? 32 : 128, flags: RTM_F_LOOKUP_TABLE });
  return { type: RTM_GETROUTE, flags: 0, body: Buffer.concat([fixed, attr(RTA_DST, a.bytes)]), op: `route get ${address}` };
}

export function routeDumpRequest(family?: 4 | 6): Request {
  return dumpRequest(RTM_GETROUTE, (f) => encodeRtMsg({ family: f }), 'route', family);
}

/** RTM_NEWROUTE / RTM_DELROUTE → Route, or undefined for families other than inet/inet6. */
export function decodeRoute(m: NlMsg): Route | undefined {
  const { fixed, attrs } = splitBody(m, RTMSG_LEN);
  const rt = decodeRtMsg(fixed);
  if (rt.family !== AF_INET && rt.family !== AF_INET6) return undefined;
  const family: IpFamily = rt.family === AF_INET ? 4 : 6;
  const dst = attrs.ip(RTA_DST);
  const r: Route = {
    family,
    dst: dst && rt.dstLen > 0 ? `${dst}/${rt.dstLen}` : 'default',
    onlink: (rt.flags & RTNH_F_ONLINK) !== 0,
    table: attrs.u32(RTA_TABLE) ?? rt.table,
    protocol: rt.protocol,
    scope: rt.scope,
    type: rt.type,
    flags: rt.flags,
  };
  const gw = attrs.ip(RTA_GATEWAY);
  if (gw) r.gateway = gw;
  const oif = attrs.u32(RTA_OIF);
  if (oif !== undefined) r.index = oif;
  const prio = attrs.u32(RTA_PRIORITY);
  if (prio !== undefined) r.metric = prio;
  const src = attrs.ip(RTA_PREFSRC);
  if (src) r.src = src;
  const mtu = attrs.nested(RTA_METRICS)?.u32(RTAX_MTU);
  if (mtu !== undefined) r.mtu = mtu;
  const nhid = attrs.u32(RTA_NH_ID);
  if (nhid !== undefined) r.nhid = nhid;
  return r;
}
