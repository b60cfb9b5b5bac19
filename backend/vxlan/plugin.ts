// The vxlan backend as a plug-in: Backend.Type "vxlan".
import { defineBackend } from '../backend.js';
import { requireV4 } from '../../host/underlay.js';
import { NetlinkMonitor } from '../../netlink/index.js';
import { VxlanBackend } from './backend.js';
import { parseVxlanConfig, VXLAN_FLAGS, type VxlanConfig } from './config.js';
import { stableVtepMac } from './vtep-mac.js';

export const vxlanBackend = defineBackend<VxlanConfig>({
  type: 'vxlan',
  flags: VXLAN_FLAGS,
  parseConfig: parseVxlanConfig,
  create(ctx) {
    const { config: c, underlay } = ctx;
    const v4 = requireV4(underlay, 'the vxlan backend');
    // Accepted for flannel compatibility, not implemented: say so rather than ignore it silently.
    if (c.directRouting) ctx.log.warn('Backend.DirectRouting is not supported by weftd yet; every peer is reached through VXLAN');
    return new VxlanBackend({
      nl: ctx.nl,
      monitor: ctx.track(NetlinkMonitor.open()),
      log: ctx.log,
      network: ctx.network,
      vni: c.vni,
      port: c.port,
      device: (ctx.flags.vxlanDevice as string | undefined) ?? `weft.${c.vni}`,
      mac: stableVtepMac(v4, c.vni, ctx.etcdPrefix),
      underlay: { ...underlay, v4 },
      ...(c.mtu !== undefined ? { mtu: c.mtu } : {}),
    });
  },
});
