// Which interface and addresses carry the overlay: --iface / --public-ip, or
// the interface of the default route and its first IPv4 address (flanneld's
// rule). The IPv6 address is --public-ipv6, else the interface's first global
// one that is not deprecated (flannel's GetInterfaceIP6Addrs order, without
// its link-local fallback: a link-local address cannot be reached by peers
// on other links); dual-stack networks need it.
import { errorKind } from '../lib/errors.js';
import type { DualAddress } from '../lib/ip.js';
import { IFA_F_DEPRECATED, RT_SCOPE_UNIVERSE, RT_TABLE_MAIN } from '../netlink/constants.js';
import type { NetlinkHandle } from '../netlink/index.js';

export interface Underlay extends DualAddress {
  readonly index: number;
  readonly name: string;
  readonly mtu: number;
}

export class UnderlayError extends errorKind('EUNDERLAY', false) {}

/** The underlay is there but not usable yet (down, no address): worth waiting for. */
export class UnderlayWaitError extends errorKind('EUNDERLAYWAIT', true) {}

export type UnderlayNetlink = Pick<NetlinkHandle, 'linkByName' | 'linkByIndex' | 'addrList' | 'routeList'>;

/**
 * The underlay: --iface, else the interface holding --public-ip, else the
 * interface of the default route, else `fallbackIface()` (the last run's, for
 * a host whose default route a link flap removed). An interface that is down
 * or has no IPv4 address yet is a retryable error: weftd waits for it.
 * Its IPv6 address: --public-ipv6, else the first global, not deprecated one.
 */
export function findUnderlay(nl: UnderlayNetlink, iface?: string, publicIp?: string, fallbackIface?: () => string | undefined, publicIpv6?: string): Underlay {
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
    index = def?.index;
  }
  if (index === undefined) {
    const last = fallbackIface?.();
    const l = last === undefined ? undefined : nl.linkByName(last);
    if (!l) throw new UnderlayError('no default route to choose an interface from; give --iface');
    index = l.index;
  }
  const link = nl.linkByIndex(index);
  if (!link) throw new UnderlayError(`interface index ${index} vanished`);
  const v4 = publicIp ?? nl.addrList({ index, family: 4 })[0]?.address;
  if (!v4) throw new UnderlayWaitError(`interface ${link.name} has no IPv4 address yet (or give --public-ip)`);
  if (!link.up) throw new UnderlayWaitError(`interface ${link.name} is down`);
  const v6 = publicIpv6 ?? nl.addrList({ index, family: 6 }).find((a) => a.scope === RT_SCOPE_UNIVERSE && (a.flags & IFA_F_DEPRECATED) === 0)?.address;
  return Object.freeze({ index, name: link.name, mtu: link.mtu, v4, ...(v6 ? { v6 } : {}) });
}

/** The underlay's IPv6 address, which a dual-stack network needs; the error says how to give one. */
export function requireV6(u: Underlay, what: string): string {
  if (!u.v6) throw new UnderlayError(`${what} needs an IPv6 address on the underlay ${u.name} (it has no global one); give --public-ipv6`);
  return u.v6;
}

/** The underlay's IPv4 address, which today's backends need; ConfigError-like failure when it has none. */
export function requireV4(u: Underlay, what: string): string {
  if (!u.v4) throw new UnderlayError(`${what} needs an IPv4 address on the underlay ${u.name}`);
  return u.v4;
}
