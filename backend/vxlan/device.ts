// The VTEP: created, or adopted when an existing device of that name has the
// same parameters (a restarted agent keeps traffic flowing), else replaced.
//   ip link add weft.1 type vxlan id 1 local 192.0.2.11 dev eth0 dstport 8472 nolearning
import type { Logger } from '../../lib/log.js';
import type { Link, NetlinkHandle } from '../../netlink/index.js';

export type VxlanDeviceNetlink = Pick<NetlinkHandle, 'linkByName' | 'linkAdd' | 'linkDel' | 'linkSetUp' | 'linkSetMtu' | 'linkSetHwAddr'>;

export interface VxlanDeviceSpec {
  readonly name: string;
  readonly vni: number;
  readonly port: number;
  /** The underlay address the device sends from. */
  readonly local: string;
  readonly underlayIndex: number;
  readonly mtu: number;
  readonly mac: string;
}

/** Why an existing link cannot serve as the device, or undefined when it can. */
export function vxlanMismatch(link: Link, s: VxlanDeviceSpec): string | undefined {
  const v = link.vxlan;
  return link.kind !== 'vxlan' ? `kind ${link.kind ?? 'none'}` :
    !v ? 'no VXLAN attributes' :
    v.id !== s.vni ? `VNI ${v.id}` :
    v.port !== s.port ? `port ${v.port}` :
    v.local !== s.local ? `local ${v.local ?? 'unset'}` :
    v.linkIndex !== s.underlayIndex ? `underlay index ${v.linkIndex ?? 'unset'}` :
    v.learning ? 'learning on' : undefined;
}

/** Creates the VTEP, or adopts an existing one whose parameters match; sets MAC, MTU and up. */
export function ensureVxlanDevice(nl: VxlanDeviceNetlink, log: Logger, s: VxlanDeviceSpec): Link {
  let link = nl.linkByName(s.name);
  if (link) {
    const why = vxlanMismatch(link, s);
    if (why) {
      log.warn('replacing VXLAN device with different parameters', { device: s.name, found: why });
      nl.linkDel(link.index); // ip link del weft.1
      link = undefined;
    }
  }
  if (!link) {
    link = nl.linkAdd({ kind: 'vxlan', name: s.name, vni: s.vni, port: s.port, local: s.local, linkIndex: s.underlayIndex, learning: false, mtu: s.mtu, mac: s.mac });
    log.info('created VXLAN device', { device: s.name, vni: s.vni, mac: s.mac, mtu: s.mtu });
  } else {
    if (link.mac !== s.mac) nl.linkSetHwAddr(link.index, s.mac);
    if (link.mtu !== s.mtu) nl.linkSetMtu(link.index, s.mtu);
  }
  if (!link.up) nl.linkSetUp(link.index); // ip link set weft.1 up
  return link;
}
