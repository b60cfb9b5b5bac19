// The host-gw backend as a plug-in: Backend.Type "host-gw".
import { ConfigError } from '../../lib/errors.js';
import { NetlinkMonitor, RTMGRP_IPV4_ROUTE, RTMGRP_IPV6_ROUTE, RTMGRP_NEXTHOP } from '../../netlink/index.js';
import { defineBackend, hostOptions } from '../backend.js';
import { DualStackBackend } from '../dual-stack.js';
import { routeEventsFilter } from '../route-events.js';
import { HostGwBackend } from './backend.js';
import { HOST_GW_FLAGS, parseHostGwConfig, type HostGwConfig } from './config.js';

export const hostGwBackend = defineBackend<HostGwConfig>({
  type: 'host-gw',
  dualStack: true,
  flags: HOST_GW_FLAGS,
  parseConfig: parseHostGwConfig,
  create(ctx) {
    const host = hostOptions(ctx, 'the host-gw backend');
    // Peers route this host's subnet via its PublicIP, so that address must be on the underlay itself
    // (flannel refuses the same: "probably you're on a NAT, which is not supported by host-gw backend").
    const own = ctx.nl.addrList({ index: host.underlay.index, family: 4 }).map((a) => a.address);
    if (!own.includes(host.underlay.v4)) {
      throw new ConfigError(
        `the host-gw backend needs the public IP on the underlay: ${host.underlay.v4} (--public-ip) is not an address of ${host.underlay.name} ` +
          `(${own.join(', ') || 'no IPv4 address'}); peers route this host's subnet via it, so a NAT is not supported`,
      );
    }
    const v4 = new HostGwBackend({ ...host, monitor: ctx.track(NetlinkMonitor.open({ groups: (RTMGRP_IPV4_ROUTE | RTMGRP_NEXTHOP) >>> 0, filter: routeEventsFilter(host.routeProtocol, true) })) });
    const v6 = ctx.underlay.v6;
    if (!ctx.ipv6Network || !v6) return v4;
    const own6 = ctx.nl.addrList({ index: host.underlay.index, family: 6 }).map((a) => a.address);
    if (!own6.includes(v6)) {
      throw new ConfigError(
        `the host-gw backend needs the public IPv6 address on the underlay: ${v6} (--public-ipv6) is not an address of ${host.underlay.name} ` +
          `(${own6.join(', ') || 'no IPv6 address'}); peers route this host's IPv6 subnet via it`,
      );
    }
    return new DualStackBackend(v4, new HostGwBackend({
      ...host, family: 6, network: ctx.ipv6Network, log: ctx.log.child({ family: 6 }),
      monitor: ctx.track(NetlinkMonitor.open({ groups: RTMGRP_IPV6_ROUTE, filter: routeEventsFilter(host.routeProtocol, true) })),
    }));
  },
});
