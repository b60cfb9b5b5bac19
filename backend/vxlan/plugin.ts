// The vxlan backend as a plug-in: Backend.Type "vxlan" (with Backend.Fallback:
// VXLAN and the udp path side by side, backend/fallback/).
import { defineBackend, hostOptions } from '../backend.js';
import { FallbackBackend } from '../fallback/backend.js';
import { effectiveUdpSettings, type UdpFlagValues } from '../udp/config.js';
import { vtepSalt } from '../../host/state-dir.js';
import { NetlinkMonitor } from '../../netlink/index.js';
import { VxlanBackend } from './backend.js';
import { parseVxlanConfig, VXLAN_FLAGS, type VxlanConfig } from './config.js';
import { stableVtepMac } from './vtep-mac.js';

export const vxlanBackend = defineBackend<VxlanConfig>({
  type: 'vxlan',
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
      monitor: ctx.track(NetlinkMonitor.open()),
      vni: c.vni,
      port: c.port,
      device,
      macFor: (ip: string) => stableVtepMac(ip, c.vni, ctx.etcdPrefix, salt),
      ...(c.mtu !== undefined ? { mtu: c.mtu } : {}),
      directRouting: c.directRouting,
    };
    if (!c.fallback) return new VxlanBackend(vxlan);
    const { mtu, ...shared } = vxlan;
    const u = effectiveUdpSettings(c.fallback, ctx.flags as unknown as UdpFlagValues);
    return new FallbackBackend({
      vxlan: shared,
      udp: { ...host, port: c.fallback.port, device: u.device, engine: u.engine, offload: u.offload },
      ...(mtu !== undefined ? { mtu } : {}),
      log: ctx.log,
    });
  },
});
