// weftd's command line: flanneld's flag names where flanneld has the flag,
// each also readable from WEFTD_<NAME> in the environment (flag wins). The
// table is the core flags, the shared --etcd-* flags and every registered
// backend's own flags (backend/<type>/config.ts). Parsed once into a frozen
// AgentConfig; everything after trusts it.
import { BACKENDS } from '../backend/builtin.js';
import type { BackendRegistry } from '../backend/registry.js';
import { DEFAULT_ROUTE_PROTOCOL } from '../backend/route-reconciler.js';
import { formatHelp, ifaceName, keyOf, parseFlags, type FlagDef, type FlagSet } from '../lib/flags.js';
import { isIp } from '../lib/ip.js';
import { isLogLevel, LOG_LEVELS, type LogLevel } from '../lib/log.js';
import { DEFAULT_STATE_DIR } from '../host/state-dir.js';
import { checkEtcdFlags, ENV_PREFIX, ETCD_FLAGS, type EtcdFlags } from './etcd-flags.js';

export { UsageError } from '../lib/flags.js';

export interface AgentConfig extends EtcdFlags {
  readonly iface?: string;
  readonly publicIp?: string;
  readonly publicIpv6?: string;
  readonly subnetFile: string;
  /** undefined: beside the subnet file (peerStateFileOf). */
  readonly peerStateFile?: string;
  readonly ipMasq: boolean;
  readonly subnetLeaseRenewMarginMinutes: number;
  readonly subnetLeaseTtlSeconds: number;
  /** 'none': weftd builds no bridge (Docker's docker0 or the CNI bridge plugin owns it). */
  readonly bridge: string;
  readonly iptablesForwardRules: boolean;
  /** Per-host state kept across restarts (the VTEP MAC's salt, the last underlay). */
  readonly stateDir: string;
  readonly routeProtocol: number;
  readonly resyncIntervalSeconds: number;
  readonly healthzIp: string;
  /** 0 = no health/metrics server. */
  readonly healthzPort: number;
  /** --metrics-peer-paths: weft_peer_path{peer,path}, one series per peer. */
  readonly metricsPeerPaths: boolean;
  readonly cniConf?: string;
  readonly cniIpamDataDir?: string;
  /** --cleanup: remove what the backends keep across restarts, then exit. */
  readonly cleanup: boolean;
  readonly cniPlugin: 'bridge' | 'flannel' | 'weft';
  readonly logLevel: LogLevel;
  readonly help: boolean;
  readonly version: boolean;
  /** Values of the flags the backends contributed (--vxlan-device, --udp-engine, ...), by key. */
  readonly backendFlags: Readonly<Record<string, unknown>>;
}

const absolutePath = (v: string) => (v.startsWith('/') ? undefined : 'must be an absolute path');

export const HOST_FLAGS: readonly FlagDef[] = [
  { name: 'iface', key: 'iface', kind: 'string', check: ifaceName, help: 'underlay interface (default: the interface of the default route)' },
  { name: 'public-ip', key: 'publicIp', kind: 'string', check: (v) => (isIp(v, 4) ? undefined : 'must be an IPv4 address'), help: 'address peers reach this host at (default: first IPv4 address of --iface)' },
  { name: 'public-ipv6', key: 'publicIpv6', kind: 'string', check: (v) => (isIp(v, 6) ? undefined : 'must be an IPv6 address'), help: 'IPv6 address peers reach this host at in a dual-stack network (default: first global IPv6 address of --iface)' },
  { name: 'subnet-file', key: 'subnetFile', kind: 'string', def: '/run/flannel/subnet.env', help: 'where to write the leased subnet (flannel format)' },
  { name: 'peer-state-file', key: 'peerStateFile', kind: 'string', check: (v) => (v.startsWith('/') ? undefined : 'must be an absolute path'), help: 'where weftd keeps each peer\'s path and why for weft status, rewritten when they change (default: weft-peers.json beside --subnet-file)' },
  { name: 'ip-masq', key: 'ipMasq', kind: 'bool', def: false, help: 'masquerade traffic from the overlay to destinations outside it' },
  { name: 'subnet-lease-renew-margin', key: 'subnetLeaseRenewMarginMinutes', kind: 'int', def: 60, min: 1, max: 1439, help: 'renew the lease at the latest this many minutes before it expires (keepalives go every TTL/3)' },
  { name: 'subnet-lease-ttl', key: 'subnetLeaseTtlSeconds', kind: 'int', def: 86400, min: 5, max: 31536000, help: 'lifetime of the subnet lease in seconds' },
  { name: 'bridge', key: 'bridge', kind: 'string', def: 'weft0', check: ifaceName, help: 'docker0-style bridge for this host\'s containers; none: build no bridge (Docker\'s docker0 or the CNI bridge plugin owns it)' },
  { name: 'iptables-forward-rules', key: 'iptablesForwardRules', kind: 'bool', def: true, help: 'accept forwarded traffic from and to the overlay in the chain WEFT-FWD (needed where the FORWARD policy is DROP, as Docker sets it)' },
  { name: 'state-dir', key: 'stateDir', kind: 'string', def: DEFAULT_STATE_DIR, check: absolutePath, help: 'per-host state kept across restarts (the VTEP MAC\'s salt, the udp backend\'s forwarding table); give each host its own' },
  {
    name: 'route-protocol', key: 'routeProtocol', kind: 'int', def: DEFAULT_ROUTE_PROTOCOL, min: 5, max: 255,
    help: 'route protocol number carried by every route weftd installs (ip route show proto N); weftd removes routes with it in the Network that no peer wants, and never touches others (0-4 are the kernel\'s)',
  },
];

const DAEMON_FLAGS: readonly FlagDef[] = [
  { name: 'resync-interval', key: 'resyncIntervalSeconds', kind: 'int', def: 10, min: 1, max: 3600, help: 'seconds between full reconciliations of the kernel state' },
  { name: 'healthz-ip', key: 'healthzIp', kind: 'string', def: '0.0.0.0', check: (v) => (isIp(v) ? undefined : 'must be an IP address'), help: 'address of the /healthz, /readyz and /metrics server' },
  { name: 'healthz-port', key: 'healthzPort', kind: 'int', def: 0, min: 0, max: 65535, help: 'port of the health and metrics server; 0 disables it' },
  { name: 'metrics-peer-paths', key: 'metricsPeerPaths', kind: 'bool', def: false, help: 'also serve weft_peer_path{peer,path} in /metrics, one series per peer (off: weft_peers_by_path{path} counts them, a series count that does not grow with the cluster)' },
  { name: 'cni-conf', key: 'cniConf', kind: 'string', check: absolutePath, help: 'write a CNI conflist (bridge + host-local) for this host\'s subnet here' },
  { name: 'cni-ipam-data-dir', key: 'cniIpamDataDir', kind: 'string', check: absolutePath, help: 'host-local state directory written into --cni-conf (default: the plugin\'s own)' },
  { name: 'cleanup', key: 'cleanup', kind: 'bool', def: false, env: false, help: 'remove what weftd keeps across restarts (the udp backend\'s persistent TUN device, its address and routes, and the saved state), then exit: for uninstalling' },
  { name: 'cni-plugin', key: 'cniPlugin', kind: 'string', def: 'bridge', choices: ['bridge', 'flannel', 'weft'], help: 'the plugin --cni-conf uses: bridge (+ host-local, the subnet written in), or weft\'s own plugin under the name flannel or weft (reads subnet.env at every ADD; weft install-cni)' },
  { name: 'log-level', key: 'logLevel', kind: 'string', def: 'info', check: (v) => (isLogLevel(v) ? undefined : `must be one of ${LOG_LEVELS.join(', ')}`), help: 'least severe log level printed' },
  { name: 'version', key: 'version', kind: 'bool', env: false, help: 'print the version and exit' },
];

/** weftd's flag table: etcd, host, the backends' flags, the daemon's own. */
export function weftdFlagSet(backends: BackendRegistry = BACKENDS): FlagSet {
  return {
    command: 'weftd',
    about: 'weftd leases a subnet from etcd and connects this host\'s containers to every other host.',
    envPrefix: ENV_PREFIX,
    flags: [...ETCD_FLAGS, ...HOST_FLAGS, ...backends.flags(), ...DAEMON_FLAGS],
    footer: 'Exit status: 0 after SIGTERM/SIGINT (kernel state, the udp backend\'s persistent TUN and the lease are kept; --cleanup removes the TUN), 1 on a runtime failure, 2 on bad flags or network config.',
  };
}

/** Every weftd flag (the README documents each). */
export const FLAGS: readonly FlagDef[] = weftdFlagSet().flags;

/** Parses argv (without node and script) and env into a frozen AgentConfig; throws UsageError. */
export function parseWeftdFlags(argv: readonly string[], env: Readonly<Record<string, string | undefined>> = {}, backends: BackendRegistry = BACKENDS): AgentConfig {
  const p = parseFlags(weftdFlagSet(backends), argv, env);
  const out: Record<string, unknown> = { ...p.values, help: p.help, version: p.values.version === true };
  checkEtcdFlags(out);
  const margin = (out.subnetLeaseRenewMarginMinutes as number) * 60;
  if (margin >= (out.subnetLeaseTtlSeconds as number)) {
    // A margin as long as the lease would renew continuously; for short test TTLs renew at half-life instead.
    out.subnetLeaseRenewMarginMinutes = (out.subnetLeaseTtlSeconds as number) / 2 / 60;
  }
  const backendFlags: Record<string, unknown> = {};
  for (const f of backends.flags()) {
    const k = keyOf(f);
    if (k in out) backendFlags[k] = out[k];
    delete out[k];
  }
  out.backendFlags = Object.freeze(backendFlags);
  return Object.freeze(out) as unknown as AgentConfig;
}

export function usage(backends: BackendRegistry = BACKENDS): string {
  return formatHelp(weftdFlagSet(backends));
}
