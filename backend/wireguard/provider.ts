// Where the WireGuard device comes from, behind one interface: the kernel's
// (rtnetlink `ip link add type wireguard` + generic netlink) or wireguard-go's
// (a TUN owned by the wireguard-go process weftd supervises, configured over
// its UAPI socket: wireguard-go.ts). Both take and give the same WgConfig /
// WgDevice, so the backend does not know which one it drives. Which one a
// host gets: choose.ts.
import type { Logger } from '../../lib/log.js';
import { isNotFound, type Link, type NetlinkHandle, type WgConfig, type WgDevice, type WireguardNetlink } from '../../netlink/index.js';
import type { WireguardImpl } from './config.js';

export type WgImplName = Exclude<WireguardImpl, 'auto'>;

export interface WgProvider {
  readonly impl: WgImplName;
  readonly device: string;
  /** Makes the device exist with this MTU (created, adopted, or wireguard-go started) and returns its link. */
  up(mtu: number): Promise<Link>;
  /** False once the device can no longer be configured (wireguard-go exited); up() again then. */
  alive(): boolean;
  set(c: WgConfig): Promise<void>;
  get(): Promise<WgDevice>;
  /** Kernel: leaves the device (a restarted agent adopts it). Userspace: stops wireguard-go, and the device goes with it. */
  close(): Promise<void>;
}

export type ProviderNetlink = Pick<NetlinkHandle, 'linkByName' | 'linkAdd' | 'linkDel' | 'linkSetMtu'>;

/** ip link del; a device that went by itself meanwhile (a TUN whose process just exited) is fine. */
export function deleteLink(nl: ProviderNetlink, index: number): void {
  try {
    nl.linkDel(index);
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
}

/** The kernel's own device: adopted as it is when it exists (peers and all), never flushed. */
export class KernelWireguard implements WgProvider {
  readonly impl = 'kernel';

  constructor(
    readonly device: string,
    private readonly nl: ProviderNetlink,
    private readonly wg: WireguardNetlink,
    private readonly log: Logger,
  ) {}

  async up(mtu: number): Promise<Link> {
    let link = this.nl.linkByName(this.device);
    if (link && link.kind !== 'wireguard') {
      this.log.warn('replacing a device of another kind that has the WireGuard device\'s name', { device: this.device, kind: link.kind ?? 'none' });
      deleteLink(this.nl, link.index);
      link = undefined;
    }
    if (!link) {
      // ip link add weft-wg mtu M type wireguard
      link = this.nl.linkAdd({ kind: 'wireguard', name: this.device, mtu });
      this.log.info('created WireGuard device', { device: this.device, impl: this.impl, mtu });
    } else if (link.mtu !== mtu) {
      this.nl.linkSetMtu(link.index, mtu);
    }
    return link;
  }

  alive(): boolean {
    return true;
  }

  async set(c: WgConfig): Promise<void> {
    this.wg.set(this.device, c);
  }

  async get(): Promise<WgDevice> {
    return this.wg.get(this.device);
  }

  async close(): Promise<void> {}
}
