// Addresses: RTM_NEWADDR / RTM_DELADDR / RTM_GETADDR requests and the Addr decoder.
import {
  AF_INET, AF_INET6, IFADDRMSG_LEN, IFA_ADDRESS, IFA_BROADCAST, IFA_FLAGS, IFA_F_NODAD, IFA_LABEL,
  IFA_LOCAL, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, RTM_DELADDR, RTM_GETADDR,
  RTM_NEWADDR, RT_SCOPE_UNIVERSE,
} from './constants.js';
import { parseIp } from '../lib/ip.js';
import { checkIndex, checkUint, dumpRequest, type Request } from './request.js';
import type { Addr, AddrSpec } from './types.js';
import { attr, attrStr, decodeIfAddrMsg, encodeIfAddrMsg, type NlMsg, splitBody } from './wire.js';

export type AddrVerb = 'add' | 'replace' | 'del';

const VERB_FLAGS: Record<AddrVerb, number> = {
  add: NLM_F_CREATE | NLM_F_EXCL,
  replace: NLM_F_CREATE | NLM_F_REPLACE,
  del: 0,
};

// ip addr add|replace|del ADDRESS/PLEN [broadcast B] [label L] dev INDEX
export function addrRequest(verb: AddrVerb, a: AddrSpec): Request {
  checkIndex('addr index', a.index);
  const ip = parseIp(a.address);
  checkUint('prefixLen', a.prefixLen, ip.family === 4 ? 32 : 128);
  const scope = a.scope ?? RT_SCOPE_UNIVERSE;
  checkUint('scope', scope, 255);
  // iproute2 sends IFA_LOCAL then IFA_ADDRESS (both the address when there is no peer).
  const attrs = [attr(IFA_LOCAL, ip.bytes), attr(IFA_ADDRESS, ip.bytes)];
  let op = `addr ${verb} ${a.address}/${a.prefixLen}`;
  if (a.broadcast !== undefined) {
    const b = parseIp(a.broadcast);
    if (b.family !== 4 || ip.family !== 4) throw new TypeError(`broadcast ${JSON.stringify(a.broadcast)} needs an IPv4 address and broadcast`);
    attrs.push(attr(IFA_BROADCAST, b.bytes));
    op += ` broadcast ${a.broadcast}`;
  }
  if (a.label !== undefined) {
    attrs.push(attrStr(IFA_LABEL, a.label));
    op += ` label ${a.label}`;
  }
  if (a.flags !== undefined && a.flags !== 0) {
    checkUint('addr flags', a.flags, 0xffffffff);
    const f = Buffer.alloc(4);
    f.writeUInt32LE(a.flags, 0); // host order, as the kernel reads IFA_FLAGS
    attrs.push(attr(IFA_FLAGS, f));
    if (a.flags & IFA_F_NODAD) op += ' nodad';
  }
  op += ` dev ${a.index}`;
  return {
    type: verb === 'del' ? RTM_DELADDR : RTM_NEWADDR,
    flags: VERB_FLAGS[verb],
    body: Buffer.concat([
      encodeIfAddrMsg({ family: ip.family === 4 ? AF_INET : AF_INET6, prefixLen: a.prefixLen, scope, index: a.index }),
      ...attrs,
    ]),
    op,
  };
}

export function addrDumpRequest(family?: 4 | 6): Request {
  return dumpRequest(RTM_GETADDR, (f) => encodeIfAddrMsg({ family: f }), 'addr', family);
}

/** RTM_NEWADDR / RTM_DELADDR → Addr, or undefined for families other than inet/inet6. */
export function decodeAddr(m: NlMsg): Addr | undefined {
  const { fixed, attrs } = splitBody(m, IFADDRMSG_LEN);
  const ifa = decodeIfAddrMsg(fixed);
  if (ifa.family !== AF_INET && ifa.family !== AF_INET6) return undefined;
  const local = attrs.ip(IFA_LOCAL);
  const address = attrs.ip(IFA_ADDRESS);
  const mine = local ?? address;
  if (!mine) return undefined;
  const a: Addr = {
    index: ifa.index,
    family: ifa.family === AF_INET ? 4 : 6,
    address: mine,
    prefixLen: ifa.prefixLen,
    scope: ifa.scope,
    flags: attrs.u32(IFA_FLAGS) ?? ifa.flags,
  };
  if (local && address && local !== address) a.peer = address;
  const brd = attrs.ip(IFA_BROADCAST);
  if (brd) a.broadcast = brd;
  const label = attrs.str(IFA_LABEL);
  if (label !== undefined) a.label = label;
  return a;
}
