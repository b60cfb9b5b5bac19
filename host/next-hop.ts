// Is a peer's address on this host's L2 segment? host-gw and VXLAN
// DirectRouting may send to a peer without encapsulation only when the kernel
// reaches its PublicIP with no gateway, through the underlay. flannel's
// ip.DirectRouting asks the same (`ip route get <ip>` answers exactly one route
// and it has no gateway); weft also wants the underlay as its device, since
// the route it installs (`<subnet> via <PublicIP> dev <underlay>`) names it.
import { RTN_LOCAL, RTN_UNICAST } from '../netlink/constants.js';
import { NetlinkError } from '../netlink/errors.js';
import type { NetlinkHandle } from '../netlink/index.js';

export type NextHop =
  | { readonly onLink: true }
  /** Not on the segment; `reason` names the address and what the kernel would do instead. */
  | { readonly onLink: false; readonly reason: string; readonly gateway?: string };

export type NextHopNetlink = Pick<NetlinkHandle, 'routeGet'>;

// The kernel's answers to a lookup that finds no usable route (no route at all, unreachable/prohibit routes).
const NO_ROUTE = new Set(['ENETUNREACH', 'EHOSTUNREACH', 'EACCES', 'EINVAL']);

/**
 * ip route get <ip>, judged: on-link through the underlay, or why not. Any
 * other kernel error (a full socket buffer, say) is thrown for the caller to
 * count and retry: "cannot tell" is not "not on the segment".
 */
export function nextHop(nl: NextHopNetlink, ip: string, underlay: { readonly index: number; readonly name: string }): NextHop {
  let routes;
  try {
    routes = nl.routeGet(ip);
  } catch (e) {
    if (e instanceof NetlinkError && NO_ROUTE.has(e.code)) return { onLink: false, reason: `the kernel has no route to ${ip} (${e.code})` };
    throw e;
  }
  if (routes.length !== 1) return { onLink: false, reason: `the kernel answered ${routes.length} routes to ${ip}, not one` };
  const r = routes[0]!;
  if (r.type === RTN_LOCAL) return { onLink: false, reason: `${ip} is an address of this host` };
  if (r.type !== RTN_UNICAST) return { onLink: false, reason: `the kernel's route to ${ip} is not unicast (type ${r.type})` };
  if (r.gateway) return { onLink: false, gateway: r.gateway, reason: `${ip} is reached via gateway ${r.gateway}: not on this host's L2 segment` };
  if (r.index !== underlay.index) {
    return { onLink: false, reason: `${ip} is reached through interface index ${r.index ?? 'none'}, not the underlay ${underlay.name}` };
  }
  return { onLink: true };
}
