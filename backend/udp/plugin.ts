// The udp backend as a plug-in: Backend.Type "udp".
import { defineBackend } from '../backend.js';
import { requireV4 } from '../../host/underlay.js';
import { UdpBackend } from './backend.js';
import { effectiveUdpSettings, parseUdpConfig, UDP_FLAGS, type UdpConfig, type UdpFlagValues } from './config.js';

export const udpBackend = defineBackend<UdpConfig>({
  type: 'udp',
  flags: UDP_FLAGS,
  parseConfig: parseUdpConfig,
  create(ctx) {
    const { config: c, underlay } = ctx;
    const v4 = requireV4(underlay, 'the udp backend');
    const s = effectiveUdpSettings(c, ctx.flags as unknown as UdpFlagValues);
    return new UdpBackend({
      nl: ctx.nl,
      log: ctx.log,
      network: ctx.network,
      port: c.port,
      device: s.device,
      underlay: { ...underlay, v4 },
      engine: s.engine,
      offload: s.offload,
      ...(c.mtu !== undefined ? { mtu: c.mtu } : {}),
    });
  },
});
