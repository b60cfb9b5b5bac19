// The pieces every backend that routes peers without encapsulation shares
// (host-gw; VXLAN with DirectRouting): whether a peer's PublicIP is on this
// host's L2 segment, and the route that sends its subnet there.
//   ip route get <PublicIP>                                          (host/next-hop.ts judges it)
//   ip route replace <subnet> via <PublicIP> dev <underlay> proto 87  (through the RouteReconciler: IPv4 as nhid <N>, a nexthop object)
import type { Prefix } from '../lib/ip.js';
import { nextHop, type NextHop, type NextHopNetlink } from '../host/next-hop.js';
import type { KernelOps } from './kernel-ops.js';
import type { DesiredRoute } from './route-reconciler.js';

/**
 * The judged `ip route get` of a peer's PublicIP; undefined when the lookup
 * itself failed (counted and logged by `ops`): "cannot tell", which callers
 * must not take for "not on the segment".
 */
export function lookupNextHop(ops: KernelOps, nl: NextHopNetlink, underlay: { readonly index: number; readonly name: string }, key: string, ip: string): NextHop | undefined {
  let hop: NextHop | undefined;
  ops.attempt('route get', `${key} (PublicIP ${ip})`, () => {
    hop = nextHop(nl, ip, underlay);
  });
  return hop;
}

/** <subnet> via <PublicIP> dev <underlay>: the peer's host is the gateway of its subnet. */
export function directRoute(subnet: Prefix, publicIp: string, underlay: { readonly index: number }): DesiredRoute {
  return { dst: subnet.toString(), gateway: publicIp, index: underlay.index };
}
