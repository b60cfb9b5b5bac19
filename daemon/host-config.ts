// What the host needs for the lease weftd holds: the backend's device
// addressed, the containers' bridge with the gateway, ip_forward, the
// WEFT-FWD forward rules, the masquerade rules, subnet.env and the CNI conflist. Idempotent: run again in
// place when the lease moves to another subnet (addresses of the old one are
// removed), and retried as a whole while it fails for a transient reason.
import type { Backend } from '../backend/backend.js';
import { ensureBridge } from '../host/bridge.js';
import { writeCniConf } from '../host/cni-conf.js';
import { ForwardRules, removeForwardRules } from '../host/forward.js';
import { ensureMasquerade, removeMasquerade } from '../host/masquerade.js';
import { writeSubnetEnv } from '../host/subnet-env.js';
import { ensureSysctl } from '../host/sysctl.js';
import type { Logger } from '../lib/log.js';
import type { NetlinkHandle } from '../netlink/index.js';
import type { Lease, NetworkConfig } from '../subnet-manager/index.js';
import type { AgentConfig } from './flags.js';

/** Returns WEFT-FWD's rules (--iptables-forward-rules), which the resync loop keeps in place. */
export async function configureHost(cfg: AgentConfig, log: Logger, nl: NetlinkHandle, network: NetworkConfig, lease: Lease, backend: Backend): Promise<ForwardRules | undefined> {
  await backend.configure(lease);
  // --bridge none: Docker's docker0 (dockerd --bip from `weft docker-opts`) or the CNI bridge plugin owns the bridge.
  if (cfg.bridge !== 'none') ensureBridge(nl, log, cfg.bridge, lease.subnet, network.network, backend.mtu);
  if (ensureSysctl('net/ipv4/ip_forward', '1')) log.info('enabled net.ipv4.ip_forward');
  let forward: ForwardRules | undefined;
  if (cfg.iptablesForwardRules) {
    forward = ForwardRules.forNetworks([{ cidr: network.network.toString(), family: 4 }], log.child({ component: 'forward' }));
    await forward.install();
  } else {
    await removeForwardRules().catch((e) => log.debug('no forward rules to remove', { err: e }));
  }
  if (cfg.ipMasq) {
    await ensureMasquerade(network.network.toString(), lease.subnet.toString());
  } else {
    await removeMasquerade().catch((e) => log.debug('no masquerade rules to remove', { err: e }));
  }
  writeSubnetEnv(cfg.subnetFile, {
    network: network.network.toString(),
    subnet: `${lease.subnet.address(1)}/${lease.subnet.prefixLen}`,
    mtu: backend.mtu,
    ipMasq: cfg.ipMasq,
  });
  if (cfg.cniConf) {
    writeCniConf(cfg.cniConf, {
      ...(cfg.bridge !== 'none' ? { bridge: cfg.bridge } : {}),
      subnet: lease.subnet.toString(),
      gateway: lease.subnet.address(1),
      mtu: backend.mtu,
      ipamDataDir: cfg.cniIpamDataDir,
      plugin: cfg.cniPlugin,
      subnetFile: cfg.subnetFile,
    });
  }
  log.info('host configured', { subnet: lease.subnet.toString(), bridge: cfg.bridge, subnetFile: cfg.subnetFile, mtu: backend.mtu });
  return forward;
}
