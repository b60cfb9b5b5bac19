// The data paths the bench compares. Each is one entry: how to build it in a
// fresh lab (2 hosts; etcd, agents and one container per host when it is an
// overlay), and which two namespaces and which agent processes to measure.
// Adding a mode is one more entry here. In a dual-stack lab (weft bench --ipv6)
// each entry also says where the same path goes over IPv6, or why it cannot.
import { join } from 'node:path';
import { attachContainer, logRecords, putNetworkConfig, startAgent, waitReady, type LabAgent } from '../lab/agent.js';
import type { Lab, LabHost, LabOptions } from '../lab/lab.js';
import { descendants } from './proc-stats.js';

export const OVERLAY_NETWORK = '10.244.0.0/16';
/** The overlay's IPv6 network in a dual-stack lab (EnableIPv6), as `weft lab --ipv6` uses. */
export const OVERLAY_IPV6_NETWORK = 'fd00:10:244::/48';

/** Where traffic goes from and to, and whose CPU time counts as the data path's cost. */
export interface PathEndpoints {
  fromNs: string;
  toNs: string;
  dstIp: string;
  /** The weftd processes of the lab and their children (wireguard-go); empty for the underlay: nothing of ours forwards. */
  agentPids: number[];
  /** One line for the progress output, e.g. "h1c1 10.244.7.2 -> h2c1 10.244.9.2". */
  describe: string;
  /** Dual-stack lab only: the same two namespaces over IPv6 (the destination's IPv6 address), or why this path carries no IPv6. */
  ipv6?: { dstIp: string; describe: string } | { unavailable: string };
}

/** Whether the lab was built dual stack (LabOptions.ipv6): every host has an IPv6 underlay address. */
const dualStack = (lab: Lab) => lab.hosts.length > 0 && lab.hosts.every((h) => h.underlayIpv6 !== undefined);

export interface DataPath {
  readonly id: string;
  readonly label: string;
  readonly lab: LabOptions;
  setup(lab: Lab): Promise<PathEndpoints>;
}

/** The mode cannot run on this build or machine (e.g. weftd refused the backend); reported, not fatal. */
export class PathUnavailableError extends Error {
  readonly code = 'EUNAVAILABLE';
}

const underlay: DataPath = {
  id: 'underlay',
  label: 'underlay (host to host)',
  lab: { hosts: 2, etcd: false },
  async setup(lab) {
    const [a, b] = [lab.host(1), lab.host(2)];
    return {
      fromNs: a.ns, toNs: b.ns, dstIp: b.underlayIp, agentPids: [], describe: `${a.name} ${a.underlayIp} -> ${b.name} ${b.underlayIp}`,
      ...(b.underlayIpv6 ? { ipv6: { dstIp: b.underlayIpv6, describe: `${a.name} ${a.underlayIpv6} -> ${b.name} ${b.underlayIpv6}` } } : {}),
    };
  },
};

/** An overlay path: network config in etcd, weftd on both hosts (with these flags), one container per host, container to container. */
export function overlay(id: string, label: string, backend: Record<string, unknown>, agentFlags: readonly string[] | ((h: LabHost) => readonly string[])): DataPath {
  const flagsFor = (h: LabHost) => (typeof agentFlags === 'function' ? agentFlags(h) : agentFlags);
  return {
    id,
    label,
    lab: { hosts: 2 },
    async setup(lab) {
      const dual = dualStack(lab);
      await putNetworkConfig(lab, { Network: OVERLAY_NETWORK, ...(dual ? { EnableIPv6: true, IPv6Network: OVERLAY_IPV6_NETWORK } : {}), Backend: backend });
      const agents = lab.hosts.map((h) => startAgent(lab, h, ['--log-level', 'info', ...flagsFor(h)]));
      const ready = [];
      for (const a of agents) {
        try {
          ready.push(await waitReady(lab, a, 20_000));
        } catch (e) {
          if (a.proc.exitCode === null && a.proc.signalCode === null) throw e;
          const why = `weftd on ${a.host.name} exited with ${a.proc.exitCode ?? a.proc.signalCode}: ${agentFailure(lab, a)}`;
          // Exit 2 is weftd refusing its configuration (e.g. a backend this build lacks): the mode is unavailable, not broken.
          throw a.proc.exitCode === 2 ? new PathUnavailableError(why) : new Error(why);
        }
      }
      const [c1, c2] = [
        await attachContainer(lab, lab.host(1), ready[0]!),
        await attachContainer(lab, lab.host(2), ready[1]!),
      ];
      return {
        fromNs: c1.ns,
        toNs: c2.ns,
        dstIp: c2.ip,
        agentPids: agents.flatMap((a) => [a.proc.pid!, ...descendants(a.proc.pid!)]),
        describe: `${c1.name} ${c1.ip} -> ${c2.name} ${c2.ip}, MTU ${ready[0]!.mtu}`,
        ...(!dual ? {} : c1.ipv6 && c2.ipv6
          ? { ipv6: { dstIp: c2.ipv6, describe: `${c1.name} ${c1.ipv6} -> ${c2.name} ${c2.ipv6}` } }
          : { ipv6: { unavailable: 'with EnableIPv6, weftd wrote no FLANNEL_IPV6_SUBNET into subnet.env: no IPv6 subnet for the containers' } }),
      };
    },
  };
}

/**
 * VXLAN with the udp fallback on a pair whose VXLAN is blocked: UDP 8472
 * dropped between the two hosts (iptables in their namespaces; ip6tables too for
 * the IPv6 underlay of a dual-stack lab), measured once both have moved the other
 * into the TUN (both families). What a pair behind a VXLAN-dropping firewall gets
 * instead of nothing.
 */
function fallbackPair(): DataPath {
  const base = overlay('vxlan-fallback', 'VXLAN blocked, on the udp fallback', { Type: 'vxlan', Fallback: { Type: 'udp', Port: 8285 } }, []);
  return {
    ...base,
    async setup(lab) {
      const ends = await base.setup(lab);
      const [a, b] = [lab.host(1), lab.host(2)];
      const families = [
        { tables: 'iptables', ip: (h: LabHost) => h.underlayIp, route: [] as string[] },
        ...(dualStack(lab) ? [{ tables: 'ip6tables', ip: (h: LabHost) => h.underlayIpv6!, route: ['-6'] }] : []),
      ];
      for (const [h, peer] of [[a, b], [b, a]] as const) {
        for (const f of families) {
          for (const [chain, dir] of [['OUTPUT', '-d'], ['INPUT', '-s']] as const) {
            const r = await lab.execIn(h.ns, f.tables, ['-I', chain, '-p', 'udp', dir, f.ip(peer), '--dport', '8472', '-j', 'DROP']);
            if (r.code !== 0) throw new PathUnavailableError(`${f.tables} in ${h.name}: ${r.stderr.trim()}`);
          }
        }
      }
      // The peer's route (one per family) has moved into the TUN.
      const onTun = async (h: LabHost) => {
        for (const f of families) if (((await lab.ipJson(h.ns, [...f.route, 'route', 'show', 'dev', 'weft-tun', 'proto', '87'])) as unknown[]).length !== 1) return false;
        return true;
      };
      const deadline = Date.now() + 15_000;
      while (!((await onTun(a)) && (await onTun(b)))) {
        if (Date.now() > deadline) throw new Error('VXLAN blocked, but the hosts did not move each other to the udp fallback within 15 s');
        await new Promise((r) => setTimeout(r, 100));
      }
      return {
        ...ends, describe: `${ends.describe}, VXLAN dropped, both on udp`,
        ...(ends.ipv6 && 'dstIp' in ends.ipv6 ? { ipv6: { ...ends.ipv6, describe: `${ends.ipv6.describe}, VXLAN dropped, both on udp` } } : {}),
      };
    },
  };
}

/** The agent's own words for why it stopped: its last error record, else the tail of its log. */
function agentFailure(lab: Lab, a: LabAgent): string {
  const errs = logRecords(lab, a).filter((r) => typeof r.level === 'number' ? r.level >= 50 : r.level === 'error' || r.level === 'fatal');
  const last = errs[errs.length - 1];
  if (last) {
    const err = last.err as { message?: string } | undefined;
    return [last.msg, err?.message].filter(Boolean).join(': ');
  }
  const tail = lab.readLog(a.proc).trim().split('\n').slice(-2).join(' | ');
  return tail || '(no log output)';
}

export const DATA_PATHS: readonly DataPath[] = [
  underlay,
  overlay('vxlan', 'kernel VXLAN', { Type: 'vxlan' }, []),
  // No encapsulation: each host routes the other's subnet via its PublicIP (both hosts share the lab's one segment).
  overlay('host-gw', 'host-gw (routed, no encapsulation)', { Type: 'host-gw' }, []),
  // Same segment, so DirectRouting gives the same plain route as host-gw: what the option costs inside the vxlan backend.
  overlay('vxlan-direct', 'kernel VXLAN, DirectRouting', { Type: 'vxlan', DirectRouting: true }, []),
  // --udp-workers 1, 2 and 4 (the default is one per CPU): what sharding over a multi-queue TUN buys on this machine.
  overlay('udp-native', 'UDP, native engine', { Type: 'udp', Engine: 'native' }, ['--udp-engine', 'native', '--udp-workers', '1']),
  overlay('udp-native-2-workers', 'UDP, native engine, 2 workers', { Type: 'udp', Engine: 'native' }, ['--udp-engine', 'native', '--udp-workers', '2']),
  // More workers than CPUs: flows spread over 4 queues; the retransmits say whether a flow stayed on one worker (no reordering).
  overlay('udp-native-4-workers', 'UDP, native engine, 4 workers', { Type: 'udp', Engine: 'native' }, ['--udp-engine', 'native', '--udp-workers', '4']),
  // The same engine with one packet per datagram and syscall slot: what the TUN/UDP offloads buy.
  overlay('udp-native-no-offload', 'UDP, native, offloads off', { Type: 'udp', Engine: 'native', Offload: false }, ['--udp-engine', 'native', '--udp-offload=false', '--udp-workers', '1']),
  overlay('udp-dgram', 'UDP, dgram engine', { Type: 'udp', Engine: 'dgram' }, ['--udp-engine', 'dgram']),
  // VXLAN's per-peer fallback: the pair's VXLAN blocked, both hosts on the udp path (native engine, offloads).
  fallbackPair(),
  // Encrypted: the kernel's WireGuard (unavailable where the kernel has none), and wireguard-go supervised by weftd.
  ...(['kernel', 'userspace'] as const).map((impl) =>
    overlay(`wireguard-${impl}`, `WireGuard, ${impl === 'kernel' ? 'kernel' : 'userspace (wireguard-go)'}`, { Type: 'wireguard' }, (h) => ['--wireguard-impl', impl, '--wireguard-key-file', join(h.dir, 'wireguard.key')])),
];

/** The references every figure is divided by. */
export const REFERENCE_PATHS = { vxlan: 'vxlan', underlay: 'underlay' } as const;
