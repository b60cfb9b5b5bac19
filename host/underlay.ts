// Which interface and address carry the overlay: --iface / --public-ip, or
// the interface of the default route and its first IPv4 address (flanneld's
// rule).
import { RT_TABLE_MAIN } from '../netlink/constants.js';
import type { NetlinkHandle } from '../netlink/index.js';
import type { Underlay } from '../backend/vxlan/backend.js';

export class UnderlayError extends Error {
  readonly code = 'EUNDERLAY';
}

export function findUnderlay(nl: NetlinkHandle, iface?: string, publicIp?: string): Underlay {
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
  const addrs = nl.addrList({ index, family: 4 });
  const ip = publicIp ?? addrs[0]?.address;
  if (!ip) throw new UnderlayError(`interface ${link.name} has no IPv4 address; give --public-ip`);
  if (!link.up) throw new UnderlayError(`interface ${link.name} is down`);
  return Object.freeze({ index, name: link.name, ip, mtu: link.mtu });
}
