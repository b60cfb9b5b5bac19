// Which interface and addresses carry the overlay: --iface / --public-ip, or
// the interface of the default route and its first IPv4 address (flanneld's
// rule). The IPv6 address is the interface's first global one, when it has
// any; nothing uses it yet (dual-stack backends will).
import { errorKind } from '../lib/errors.js';
import type { DualAddress } from '../lib/ip.js';
import { RT_SCOPE_UNIVERSE, RT_TABLE_MAIN } from '../netlink/constants.js';
import type { NetlinkHandle } from '../netlink/index.js';

export interface Underlay extends DualAddress {
  readonly index: number;
  readonly name: string;
  readonly mtu: number;
}

export class UnderlayError extends errorKind('EUNDERLAY', false) {}

export type UnderlayNetlink = Pick<NetlinkHandle, 'linkByName' | 'linkByIndex' | 'addrList' | 'routeList'>;

export function findUnderlay(nl: UnderlayNetlink, iface?: string, publicIp?: string): Underlay {
  let index: number | undefined;
  if (iface) {
    const l = nl.linkByName(iface);
    if (!l) throw new UnderlayError(`--iface ${iface}: no such interface`);
    index = l.index;
  } else if (publicIp) {
    index = nl.addrList({ family: 4 }).find((a) => a.address === publicIp)?.index;
  }
  if (index === undefined) {
    const def = nl.routeList({ family: 4, table: RT_TABLE_MAIN }).find((r) => r.table === RT_TABLE_MAIN && (r.dst === 'default' || r.dst === '0.0.0.0/0'));
    if (!def?.index) throw new UnderlayError('no default route to choose an interface from; give --iface');
    index = def.index;
  }
  const link = nl.linkByIndex(index);
  if (!link) throw new UnderlayError(`interface index ${index} vanished`);
  const v4 = publicIp ?? nl.addrList({ index, family: 4 })[0]?.address;
  if (!v4) throw new UnderlayError(`interface ${link.name} has no IPv4 address; give --public-ip`);
  if (!link.up) throw new UnderlayError(`interface ${link.name} is down`);
  const v6 = nl.addrList({ index, family: 6 }).find((a) => a.scope === RT_SCOPE_UNIVERSE)?.address;
  return Object.freeze({ index, name: link.name, mtu: link.mtu, v4, ...(v6 ? { v6 } : {}) });
}

/** The underlay's IPv4 address, which today's backends need; ConfigError-like failure when it has none. */
export function requireV4(u: Underlay, what: string): string {
  if (!u.v4) throw new UnderlayError(`${what} needs an IPv4 address on the underlay ${u.name}`);
  return u.v4;
}
