// Which WireGuard device a host gets (--wireguard-impl), and reading any
// WireGuard device for `weft status`.
import { existsSync } from 'node:fs';
import { ConfigError } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import { which } from '../../lib/which.js';
import { GenlHandle, isNotFound, NetlinkError, WireguardNetlink, type WgDevice } from '../../netlink/index.js';
import type { WireguardImpl } from './config.js';
import { KernelWireguard, type ProviderNetlink, type WgProvider } from './provider.js';
import { UapiClient, uapiSocketPath } from './uapi.js';
import { WireguardGo } from './wireguard-go.js';

export interface ProviderChoice {
  readonly impl: WireguardImpl;
  readonly device: string;
  readonly nl: ProviderNetlink;
  readonly log: Logger;
  /** Opened on demand: generic netlink is only needed for the kernel device. */
  readonly genl: () => WireguardNetlink;
  /** Where to look for wireguard-go and setpriv (default PATH). */
  readonly path?: string;
}

/**
 * Does this kernel have WireGuard? Yes when the generic netlink family is
 * registered, or when a link of kind wireguard can be made (which loads the
 * module where it exists as one); the probe device is the real one, kept.
 * Otherwise the reason, as the kernel gave it.
 */
export function kernelWireguard(c: ProviderChoice): { ok: true } | { ok: false; why: string } {
  if (c.genl().familyId() !== undefined) return { ok: true };
  const existing = c.nl.linkByName(c.device);
  if (existing?.kind === 'wireguard') return { ok: true };
  if (existing) return { ok: false, why: `no WireGuard generic netlink family, and ${c.device} exists as a ${existing.kind ?? 'plain'} device` };
  try {
    c.nl.linkAdd({ kind: 'wireguard', name: c.device });
  } catch (e) {
    if (e instanceof NetlinkError && (e.code === 'EOPNOTSUPP' || isNotFound(e))) return { ok: false, why: e.extAck ? `ip link add ${c.device} type wireguard: ${e.extAck}` : e.message };
    throw e;
  }
  return c.genl().familyId() !== undefined ? { ok: true } : { ok: false, why: 'a wireguard link was created but the generic netlink family is missing' };
}

/** The provider for --wireguard-impl; ConfigError when the host cannot give that one. */
export function chooseProvider(c: ProviderChoice): WgProvider {
  const kernel = (): WgProvider => new KernelWireguard(c.device, c.nl, c.genl(), c.log);
  const userspace = (why?: string): WgProvider => {
    const binary = which('wireguard-go', c.path);
    if (!binary) {
      throw new ConfigError(`${why ? `${why}; ` : ''}the userspace WireGuard needs wireguard-go on PATH (Debian: apt-get install wireguard-go)`);
    }
    if (why) c.log.info('this kernel has no WireGuard; using userspace wireguard-go', { reason: why, wireguardGo: binary });
    return new WireguardGo({ device: c.device, nl: c.nl, log: c.log.child({ component: 'wireguard-go' }), binary, setpriv: which('setpriv', c.path) });
  };
  if (c.impl === 'userspace') return userspace();
  const k = kernelWireguard(c);
  if (k.ok) return kernel();
  if (c.impl === 'kernel') throw new ConfigError(`--wireguard-impl kernel: this kernel has no WireGuard (${k.why}); use --wireguard-impl userspace or auto`);
  return userspace(k.why);
}

/**
 * The device as `wg show` reads it, for `weft status`: over generic netlink
 * for a kernel device, over wireguard-go's socket for a TUN that has one;
 * undefined for any other device.
 */
export async function readWireguardDevice(link: { readonly name: string; readonly kind?: string }): Promise<WgDevice | undefined> {
  if (link.kind === 'wireguard') {
    const genl = GenlHandle.open();
    try {
      return new WireguardNetlink(genl).get(link.name);
    } finally {
      genl.close();
    }
  }
  if (link.kind === 'tun' && existsSync(uapiSocketPath(link.name))) return new UapiClient(link.name).get();
  return undefined;
}
