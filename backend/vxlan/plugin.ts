// The vxlan backend as a plug-in: Backend.Type "vxlan".
import { defineBackend, hostOptions } from '../backend.js';
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
    return new VxlanBackend({
      ...host,
      monitor: ctx.track(NetlinkMonitor.open()),
      vni: c.vni,
      port: c.port,
      device: (ctx.flags.vxlanDevice as string | undefined) ?? `weft.${c.vni}`,
      mac: stableVtepMac(host.underlay.v4, c.vni, ctx.etcdPrefix),
      ...(c.mtu !== undefined ? { mtu: c.mtu } : {}),
      directRouting: c.directRouting,
    });
  },
});
