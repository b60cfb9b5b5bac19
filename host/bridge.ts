// The docker0-style bridge containers attach to: <subnet>.1/<len>, overlay MTU, up.
//   ip link add weft0 type bridge; ip addr replace 10.244.3.1/24 dev weft0; ip link set weft0 mtu 1450 up
import type { Prefix } from '../lib/ip.js';
import type { Logger } from '../lib/log.js';
import type { NetlinkHandle } from '../netlink/index.js';

export function ensureBridge(nl: NetlinkHandle, log: Logger, name: string, subnet: Prefix, network: Prefix, mtu: number): number {
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
  const gw = subnet.address(1);
  for (const a of nl.addrList({ index: link.index, family: 4 })) {
    // An address of an older lease in the cluster network would route a peer's subnet to the bridge.
    if (network.contains(a.address) && !(a.address === gw && a.prefixLen === subnet.prefixLen)) {
      nl.addrDel({ index: link.index, address: a.address, prefixLen: a.prefixLen });
    }
  }
  nl.addrReplace({ index: link.index, address: gw, prefixLen: subnet.prefixLen });
  if (!link.up) nl.linkSetUp(link.index);
  return link.index;
}
