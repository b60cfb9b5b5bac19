// The udp backend as a plug-in: Backend.Type "udp". Dual stack (EnableIPv6): one
// TUN and engine for both families, IPv6 carried over the IPv4 underlay.
import { defineBackend, hostOptions } from '../backend.js';
import { UdpBackend } from './backend.js';
import { effectiveUdpSettings, parseUdpConfig, UDP_FLAGS, type UdpConfig, type UdpFlagValues } from './config.js';
import { cleanupUdp, resumeUdp, type ResumedUdp } from './resume.js';

export const udpBackend = defineBackend<UdpConfig>({
  type: 'udp',
  dualStack: true,
  flags: UDP_FLAGS,
  parseConfig: parseUdpConfig,
  create(ctx) {
    const c = ctx.config;
    const s = effectiveUdpSettings(c, ctx.flags as unknown as UdpFlagValues);
    return new UdpBackend({
      ...hostOptions(ctx, 'the udp backend'),
      ...(ctx.ipv6Network ? { ipv6Network: ctx.ipv6Network } : {}),
      port: c.port,
      device: s.device,
      engine: s.engine,
      offload: s.offload,
      workers: s.workers,
      stateDir: ctx.stateDir,
      ...(ctx.resumed?.type === 'udp' ? { resumed: ctx.resumed as ResumedUdp } : {}),
      ...(c.mtu !== undefined ? { mtu: c.mtu } : {}),
    });
  },
  resume: resumeUdp,
  cleanup: cleanupUdp,
});
