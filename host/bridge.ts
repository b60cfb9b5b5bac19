// The docker0-style bridge containers attach to: <subnet>.1/<len>, overlay MTU, up.
//   ip link add weft0 type bridge; ip addr replace 10.244.3.1/24 dev weft0; ip link set weft0 mtu 1450 up
// Dual stack adds the IPv6 gateway, without duplicate address detection (usable at once):
//   ip addr replace fd00:10:244:7::1/64 dev weft0 nodad
import type { Prefix } from '../lib/ip.js';
import { IFA_F_NODAD } from '../netlink/constants.js';
import type { Logger } from '../lib/log.js';
import type { NetlinkHandle } from '../netlink/index.js';

export function ensureBridge(nl: NetlinkHandle, log: Logger, name: string, subnet: Prefix, network: Prefix, mtu: number,
  v6?: { readonly subnet: Prefix; readonly network: Prefix }): number {
  let link = nl.linkByName(name);
  if (link && link.kind !== 'bridge') {
    throw new Error(`--bridge ${name}: an interface of that name exists and is a ${link.kind ?? 'plain device'}, not a bridge`);
  }
  if (!link) {
    link = nl.linkAdd({ kind: 'bridge', name, mtu });
    log.info('created bridge', { bridge: name, mtu });
  } else if (link.mtu !== mtu) {
    nl.linkSetMtu(link.index, mtu);
  }
  const gateway = (sn: Prefix, net: Prefix, flags?: number) => {
    const gw = sn.address(1);
    for (const a of nl.addrList({ index: link!.index, family: sn.family })) {
      // An address of an older lease in the cluster network would route a peer's subnet to the bridge.
      if (net.contains(a.address) && !(a.address === gw && a.prefixLen === sn.prefixLen)) {
        nl.addrDel({ index: link!.index, address: a.address, prefixLen: a.prefixLen });
      }
    }
    nl.addrReplace({ index: link!.index, address: gw, prefixLen: sn.prefixLen, ...(flags ? { flags } : {}) });
  };
  gateway(subnet, network);
  if (v6) gateway(v6.subnet, v6.network, IFA_F_NODAD);
  if (!link.up) nl.linkSetUp(link.index);
  return link.index;
}
