// What the host needs for the lease weftd holds: the backend's device
// addressed, the containers' bridge with the gateway, ip_forward, the
// WEFT-FWD forward rules, the masquerade rules, subnet.env and the CNI conflist. Idempotent: run again in
// place when the lease moves to another subnet (addresses of the old one are
// removed), and retried as a whole while it fails for a transient reason.
// A dual-stack lease adds the bridge's IPv6 gateway, IPv6 forwarding, the
// ip6tables chains, subnet.env's IPv6 pair and the conflist's IPv6 range.
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
  const v6 = network.ipv6Network && lease.ipv6Subnet ? { subnet: lease.ipv6Subnet, network: network.ipv6Network } : undefined;
  // --bridge none: Docker's docker0 (dockerd --bip from `weft docker-opts`) or the CNI bridge plugin owns the bridge.
  if (cfg.bridge !== 'none') ensureBridge(nl, log, cfg.bridge, lease.subnet, network.network, backend.mtu, v6);
  if (ensureSysctl('net/ipv4/ip_forward', '1')) log.info('enabled net.ipv4.ip_forward');
  if (v6 && ensureSysctl('net/ipv6/conf/all/forwarding', '1')) log.info('enabled net.ipv6.conf.all.forwarding');
  let forward: ForwardRules | undefined;
  if (cfg.iptablesForwardRules) {
    const nets = [{ cidr: network.network.toString(), family: 4 as const }, ...(v6 ? [{ cidr: v6.network.toString(), family: 6 as const }] : [])];
    forward = ForwardRules.forNetworks(nets, log.child({ component: 'forward' }));
    await forward.install();
  } else {
    await removeForwardRules().catch((e) => log.debug('no forward rules to remove', { err: e }));
    if (v6) await removeForwardRules(6).catch((e) => log.debug('no IPv6 forward rules to remove', { err: e }));
  }
  if (cfg.ipMasq) {
    await ensureMasquerade(network.network.toString(), lease.subnet.toString());
    if (v6) await ensureMasquerade(v6.network.toString(), v6.subnet.toString(), 6);
  } else {
    await removeMasquerade().catch((e) => log.debug('no masquerade rules to remove', { err: e }));
    if (v6) await removeMasquerade(6).catch((e) => log.debug('no IPv6 masquerade rules to remove', { err: e }));
  }
  const gw6 = v6 ? { subnet: v6.subnet.toString(), gateway: v6.subnet.address(1) } : undefined;
  writeSubnetEnv(cfg.subnetFile, {
    network: network.network.toString(),
    subnet: `${lease.subnet.address(1)}/${lease.subnet.prefixLen}`,
    ...(v6 && gw6 ? { ipv6Network: v6.network.toString(), ipv6Subnet: `${gw6.gateway}/${v6.subnet.prefixLen}` } : {}),
    mtu: backend.mtu,
    ipMasq: cfg.ipMasq,
  });
  if (cfg.cniConf) {
    writeCniConf(cfg.cniConf, {
      ...(cfg.bridge !== 'none' ? { bridge: cfg.bridge } : {}),
      subnet: lease.subnet.toString(),
      gateway: lease.subnet.address(1),
      ...(gw6 ? { ipv6: gw6 } : {}),
      mtu: backend.mtu,
      ipamDataDir: cfg.cniIpamDataDir,
      plugin: cfg.cniPlugin,
      subnetFile: cfg.subnetFile,
    });
  }
  log.info('host configured', { subnet: lease.subnet.toString(), bridge: cfg.bridge, subnetFile: cfg.subnetFile, mtu: backend.mtu });
  return forward;
}
