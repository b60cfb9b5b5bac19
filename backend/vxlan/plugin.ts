// The vxlan backend as a plug-in: Backend.Type "vxlan" (with Backend.Fallback:
// VXLAN and the udp path side by side, backend/fallback/). A dual-stack network
// gets a second device for IPv6, weft-v6.<VNI> (flannel's flannel-v6.<VNI>).
import { defineBackend, hostOptions } from '../backend.js';
import { DualStackBackend } from '../dual-stack.js';
import { FallbackBackend } from '../fallback/backend.js';
import { effectiveUdpSettings, type UdpFlagValues } from '../udp/config.js';
import { vtepSalt } from '../../host/state-dir.js';
import { NetlinkMonitor, RTMGRP_IPV6_ROUTE, RTMGRP_LINK, RTMGRP_NEIGH } from '../../netlink/index.js';
import { routeEventsFilter } from '../route-events.js';
import { VxlanBackend } from './backend.js';
import { parseVxlanConfig, VXLAN_FLAGS, type VxlanConfig } from './config.js';
import { stableVtepMac } from './vtep-mac.js';

export const vxlanBackend = defineBackend<VxlanConfig>({
  type: 'vxlan',
  dualStack: true,
  flags: VXLAN_FLAGS,
  parseConfig: parseVxlanConfig,
  create(ctx) {
    const c = ctx.config;
    const host = hostOptions(ctx, 'the vxlan backend');
    const device = (ctx.flags.vxlanDevice as string | undefined) ?? `weft.${c.vni}`;
    const salt = vtepSalt(ctx.stateDir, () => {
      const l = ctx.nl.linkByName(device);
      return l?.kind === 'vxlan' && l.mac === stableVtepMac(host.underlay.v4, c.vni, ctx.etcdPrefix);
    });
    const vxlan = {
      ...host,
      monitor: ctx.track(NetlinkMonitor.open({ filter: routeEventsFilter(host.routeProtocol, c.directRouting) })),
      vni: c.vni,
      port: c.port,
      device,
      macFor: (ip: string) => stableVtepMac(ip, c.vni, ctx.etcdPrefix, salt),
      ...(c.mtu !== undefined ? { mtu: c.mtu } : {}),
      directRouting: c.directRouting,
    };
    const dual = ctx.ipv6Network && ctx.underlay.v6 ? ctx.ipv6Network : undefined;
    let v4;
    if (!c.fallback) {
      v4 = new VxlanBackend(vxlan);
    } else {
      const { mtu, ...shared } = vxlan;
      const u = effectiveUdpSettings(c.fallback, ctx.flags as unknown as UdpFlagValues);
      v4 = new FallbackBackend({
        vxlan: shared,
        udp: { ...host, port: c.fallback.port, device: u.device, engine: u.engine, offload: u.offload, uso: u.uso, ...(dual ? { ipv6Network: dual } : {}) },
        ...(mtu !== undefined ? { mtu } : {}),
        log: ctx.log,
      });
    }
    if (!dual) return v4;
    const v6 = new VxlanBackend({
      ...host,
      family: 6,
      network: dual,
      log: ctx.log.child({ family: 6 }),
      monitor: ctx.track(NetlinkMonitor.open({ groups: RTMGRP_LINK | RTMGRP_NEIGH | RTMGRP_IPV6_ROUTE, filter: routeEventsFilter(host.routeProtocol, c.directRouting) })),
      vni: c.vni,
      port: c.port,
      device: `weft-v6.${c.vni}`,
      macFor: (ip) => stableVtepMac(ip, c.vni, ctx.etcdPrefix, salt),
      ...(c.mtu !== undefined ? { mtu: c.mtu } : {}),
      directRouting: c.directRouting,
      // With a fallback, a peer's IPv6 subnet takes the path its IPv4 half is on (the udp path carries both).
      ...(v4 instanceof FallbackBackend ? { fallback: v4.v6Routing } : {}),
    });
    if (v4 instanceof FallbackBackend) v4.attachV6(v6);
    return new DualStackBackend(v4, v6);
  },
});
