// What kernel notifications (a NetlinkMonitor's poll) mean for a backend that
// keeps per-peer routes: something of ours was deleted (repair now, not at the
// next full resync), or the underlay's routing changed (re-evaluate which
// peers are on this host's L2 segment: host-gw, VXLAN DirectRouting).
import { type MonitorFilter, type Notification, RTM_DELLINK, RTM_DELNEIGH, RTM_DELNEXTHOP, RTM_DELROUTE } from '../netlink/index.js';

/**
 * What classifyNotifications acts on, as the monitor socket's kernel-side filter
 * (NetlinkMonitor.open): deletions, and with `underlay` route additions that are
 * not ours. Our own additions (4 per VXLAN peer, 2 per host-gw peer) never reach
 * the socket.
 */
export function routeEventsFilter(protocol: number, underlay: boolean): MonitorFilter {
  return { types: [RTM_DELROUTE, RTM_DELNEXTHOP, RTM_DELNEIGH, RTM_DELLINK], ...(underlay ? { foreignRoutesBesides: protocol } : {}) };
}

export interface RouteEvents {
  /** A route or nexthop object with weft's protocol, or an entry or the link of `device`, was deleted (possibly by us). */
  readonly oursDeleted: boolean;
  /** A route that is not weft's changed (an underlay address, a gateway, a host route): paths may differ now. */
  readonly underlayChanged: boolean;
}

export function classifyNotifications(notes: readonly Notification[], o: { readonly protocol: number; readonly device?: number }): RouteEvents {
  let oursDeleted = false;
  let underlayChanged = false;
  const onDevice = (index: number | undefined) => o.device !== undefined && index === o.device;
  for (const n of notes) {
    switch (n.kind) {
      case 'overrun': // events were lost: assume the worst
        oursDeleted = underlayChanged = true;
        break;
      case 'route':
        if (n.route.protocol === o.protocol || onDevice(n.route.index)) oursDeleted ||= n.action === 'del';
        else underlayChanged = true;
        break;
      case 'neigh':
        oursDeleted ||= n.action === 'del' && onDevice(n.neigh.index);
        break;
      case 'fdb':
        oursDeleted ||= n.action === 'del' && onDevice(n.fdb.index);
        break;
      case 'link':
        oursDeleted ||= n.action === 'del' && onDevice(n.link.index);
        break;
      case 'nexthop': // its routes went with it, without a route notification
        oursDeleted ||= n.action === 'del' && n.nexthop.protocol === o.protocol;
        break;
      default:
        break;
    }
  }
  return { oursDeleted, underlayChanged };
}
