// The host-gw backend as a plug-in: Backend.Type "host-gw".
import { ConfigError } from '../../lib/errors.js';
import { NetlinkMonitor, RTMGRP_IPV4_ROUTE } from '../../netlink/index.js';
import { defineBackend, hostOptions } from '../backend.js';
import { HostGwBackend } from './backend.js';
import { HOST_GW_FLAGS, parseHostGwConfig, type HostGwConfig } from './config.js';

export const hostGwBackend = defineBackend<HostGwConfig>({
  type: 'host-gw',
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
    return new HostGwBackend({ ...host, monitor: ctx.track(NetlinkMonitor.open({ groups: RTMGRP_IPV4_ROUTE })) });
  },
});
