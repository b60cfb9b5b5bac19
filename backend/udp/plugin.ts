// The udp backend as a plug-in: Backend.Type "udp". Dual stack (EnableIPv6): one
// TUN and engine for both families, carried over the IPv4 underlay, or with
// "Underlay": "ipv6" over the IPv6 one (to the peers' PublicIPv6).
import { ConfigError } from '../../lib/errors.js';
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
    const what = (ctx.flags as unknown as UdpFlagValues).udpUnderlay ? '--udp-underlay ipv6' : 'Backend.Underlay "ipv6"';
    if (s.underlay === 'ipv6' && !ctx.ipv6Network) {
      throw new ConfigError(`${what} (datagrams to the peers' PublicIPv6) needs EnableIPv6 and an IPv6Network in the network config`);
    }
    if (s.underlay === 'ipv6' && !ctx.underlay.v6) {
      throw new ConfigError(`${what} needs an IPv6 address of this host's own (--public-ipv6, or a global IPv6 address on ${ctx.underlay.name})`);
    }
    return new UdpBackend({
      ...hostOptions(ctx, 'the udp backend'),
      ...(ctx.ipv6Network ? { ipv6Network: ctx.ipv6Network } : {}),
      port: c.port,
      device: s.device,
      engine: s.engine,
      offload: s.offload,
      uso: s.uso,
      workers: s.workers,
      stateDir: ctx.stateDir,
      ...(ctx.resumed?.type === 'udp' ? { resumed: ctx.resumed as ResumedUdp } : {}),
      ...(c.mtu !== undefined ? { mtu: c.mtu } : {}),
      ...(ctx.ipv6Network && ctx.underlay.v6 ? { dualSocket: true } : {}),
      ...(s.underlay === 'ipv6' ? { over6: true } : {}),
    });
  },
  resume: resumeUdp,
  cleanup: cleanupUdp,
});
