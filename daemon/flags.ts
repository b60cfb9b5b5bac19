// weftd's command line: flanneld's flag names where flanneld has the flag,
// each also readable from WEFTD_<NAME> in the environment (flag wins).
// Parsed once into a frozen AgentConfig; everything after trusts it.
import { isIP, isIPv4 } from 'node:net';
import { scanArgv } from '../lib/flags.js';
import { isLogLevel, type LogLevel } from './logger.js';

export class UsageError extends Error {
  readonly code = 'EUSAGE';
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface AgentConfig {
  readonly etcdEndpoints: readonly string[];
  readonly etcdPrefix: string;
  readonly etcdCaFile?: string;
  readonly etcdCertFile?: string;
  readonly etcdKeyFile?: string;
  readonly etcdUsername?: string;
  readonly etcdPassword?: string;
  readonly iface?: string;
  readonly publicIp?: string;
  readonly subnetFile: string;
  readonly ipMasq: boolean;
  readonly subnetLeaseRenewMarginMinutes: number;
  readonly subnetLeaseTtlSeconds: number;
  readonly bridge: string;
  readonly vxlanDevice?: string;
  readonly tunDevice: string;
  /** udp backend engine; unset = Backend.Engine of the network config, else native. */
  readonly udpEngine?: 'native' | 'dgram';
  /** native udp engine: TUN and UDP offloads; unset = Backend.Offload of the network config, else on. */
  readonly udpOffload?: boolean;
  readonly resyncIntervalSeconds: number;
  readonly healthzIp: string;
  /** 0 = no health/metrics server. */
  readonly healthzPort: number;
  readonly cniConf?: string;
  readonly cniIpamDataDir?: string;
  readonly logLevel: LogLevel;
  readonly help: boolean;
  readonly version: boolean;
}

type Kind = 'string' | 'bool' | 'int' | 'list';
interface FlagDef {
  readonly name: string;
  readonly key: keyof AgentConfig;
  readonly kind: Kind;
  readonly help: string;
  readonly def?: string;
  readonly min?: number;
  readonly max?: number;
  readonly check?: (v: string) => string | undefined;
}

const ifaceName = (v: string) =>
  /^[^\s/:]{1,15}$/.test(v) ? undefined : 'must be an interface name of 1 to 15 characters without "/", ":" or spaces';
const url = (v: string) => {
  for (const part of v.split(',')) {
    let u: URL;
    try {
      u = new URL(part);
    } catch {
      return `"${part}" is not a URL like http://127.0.0.1:2379`;
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return `"${part}" must use http:// or https://`;
  }
  return undefined;
};

export const FLAGS: readonly FlagDef[] = [
  { name: 'etcd-endpoints', key: 'etcdEndpoints', kind: 'list', def: 'http://127.0.0.1:2379', check: url, help: 'comma-separated etcd client URLs' },
  { name: 'etcd-prefix', key: 'etcdPrefix', kind: 'string', def: '/coreos.com/network', check: (v) => (v.startsWith('/') ? undefined : 'must start with "/"'), help: 'etcd key prefix of the network config and leases' },
  { name: 'etcd-cafile', key: 'etcdCaFile', kind: 'string', help: 'CA certificate to verify etcd (TLS)' },
  { name: 'etcd-certfile', key: 'etcdCertFile', kind: 'string', help: 'client certificate for etcd (TLS)' },
  { name: 'etcd-keyfile', key: 'etcdKeyFile', kind: 'string', help: 'client key for etcd (TLS)' },
  { name: 'etcd-username', key: 'etcdUsername', kind: 'string', help: 'etcd user name' },
  { name: 'etcd-password', key: 'etcdPassword', kind: 'string', help: 'etcd password' },
  { name: 'iface', key: 'iface', kind: 'string', check: ifaceName, help: 'underlay interface (default: the interface of the default route)' },
  { name: 'public-ip', key: 'publicIp', kind: 'string', check: (v) => (isIPv4(v) ? undefined : 'must be an IPv4 address'), help: 'address peers reach this host at (default: first IPv4 address of --iface)' },
  { name: 'subnet-file', key: 'subnetFile', kind: 'string', def: '/run/flannel/subnet.env', help: 'where to write the leased subnet (flannel format)' },
  { name: 'ip-masq', key: 'ipMasq', kind: 'bool', def: 'false', help: 'masquerade traffic from the overlay to destinations outside it' },
  { name: 'subnet-lease-renew-margin', key: 'subnetLeaseRenewMarginMinutes', kind: 'int', def: '60', min: 1, max: 1439, help: 'renew the lease this many minutes before it expires' },
  { name: 'subnet-lease-ttl', key: 'subnetLeaseTtlSeconds', kind: 'int', def: '86400', min: 5, max: 31536000, help: 'lifetime of the subnet lease in seconds' },
  { name: 'bridge', key: 'bridge', kind: 'string', def: 'weft0', check: ifaceName, help: 'docker0-style bridge for this host\'s containers' },
  { name: 'vxlan-device', key: 'vxlanDevice', kind: 'string', check: ifaceName, help: 'name of the VXLAN device (default: weft.<VNI>)' },
  { name: 'tun-device', key: 'tunDevice', kind: 'string', def: 'weft-tun', check: ifaceName, help: 'name of the udp backend\'s TUN device' },
  { name: 'udp-engine', key: 'udpEngine', kind: 'string', check: (v) => (v === 'native' || v === 'dgram' ? undefined : 'must be native or dgram'), help: 'udp backend forwarding engine, native or dgram (default: Backend.Engine, else native)' },
  { name: 'udp-offload', key: 'udpOffload', kind: 'bool', help: 'native udp engine: TUN TSO/GSO and UDP GSO/GRO offloads (default: Backend.Offload, else true); --udp-offload=false for one packet per datagram and syscall slot' },
  { name: 'resync-interval', key: 'resyncIntervalSeconds', kind: 'int', def: '10', min: 1, max: 3600, help: 'seconds between full reconciliations of the kernel state' },
  { name: 'healthz-ip', key: 'healthzIp', kind: 'string', def: '0.0.0.0', check: (v) => (isIP(v) ? undefined : 'must be an IP address'), help: 'address of the /healthz, /readyz and /metrics server' },
  { name: 'healthz-port', key: 'healthzPort', kind: 'int', def: '0', min: 0, max: 65535, help: 'port of the health and metrics server; 0 disables it' },
  { name: 'cni-conf', key: 'cniConf', kind: 'string', check: (v) => (v.startsWith('/') ? undefined : 'must be an absolute path'), help: 'write a CNI conflist (bridge + host-local) for this host\'s subnet here' },
  { name: 'cni-ipam-data-dir', key: 'cniIpamDataDir', kind: 'string', check: (v) => (v.startsWith('/') ? undefined : 'must be an absolute path'), help: 'host-local state directory written into --cni-conf (default: the plugin\'s own)' },
  { name: 'log-level', key: 'logLevel', kind: 'string', def: 'info', check: (v) => (isLogLevel(v) ? undefined : 'must be one of debug, info, warn, error, silent'), help: 'least severe log level printed' },
  { name: 'help', key: 'help', kind: 'bool', def: 'false', help: 'print this help and exit' },
  { name: 'version', key: 'version', kind: 'bool', def: 'false', help: 'print the version and exit' },
];

export function envName(flag: string): string {
  return 'WEFTD_' + flag.toUpperCase().replace(/-/g, '_');
}

function convert(def: FlagDef, raw: string, source: string): unknown {
  const bad = (why: string) => new UsageError(`invalid ${source} ${JSON.stringify(raw)}: ${why}`);
  switch (def.kind) {
    case 'bool':
      if (['true', '1', 'yes', ''].includes(raw)) return true;
      if (['false', '0', 'no'].includes(raw)) return false;
      throw bad('must be true or false');
    case 'int': {
      if (!/^-?\d+$/.test(raw)) throw bad('must be a whole number');
      const n = Number(raw);
      if (def.min !== undefined && n < def.min) throw bad(`must be at least ${def.min}`);
      if (def.max !== undefined && n > def.max) throw bad(`must be at most ${def.max}`);
      return n;
    }
    case 'list': {
      const why = def.check?.(raw);
      if (why) throw bad(why);
      return Object.freeze(raw.split(',').map((s) => s.trim()).filter(Boolean));
    }
    case 'string': {
      if (raw === '') throw bad('must not be empty');
      const why = def.check?.(raw);
      if (why) throw bad(why);
      return raw;
    }
  }
}

/** Parses argv (without node and script) and env into a frozen AgentConfig; throws UsageError. */
export function parseFlags(argv: readonly string[], env: Readonly<Record<string, string | undefined>> = {}): AgentConfig {
  const byName = new Map(FLAGS.map((f) => [f.name, f]));
  const out: Record<string, unknown> = {};
  for (const f of FLAGS) {
    const fromEnv = env[envName(f.name)];
    if (fromEnv !== undefined && f.name !== 'help' && f.name !== 'version') {
      out[f.key] = convert(f, fromEnv, `${envName(f.name)}=`);
    } else if (f.def !== undefined) {
      out[f.key] = convert(f, f.def, `default of --${f.name}`);
    }
  }
  scanArgv(argv, {
    special: (arg) => (arg === '-h' ? (out.help = true) : false),
    kindOf: (name) => {
      const def = byName.get(name);
      return def ? (def.kind === 'bool' ? 'bool' : 'value') : undefined;
    },
    onFlag: (name, raw) => {
      const def = byName.get(name)!;
      out[def.key] = convert(def, raw, `--${name}`);
    },
    onOther: (arg) => {
      throw new UsageError(`unexpected argument ${JSON.stringify(arg)} (weftd takes only --flags; see --help)`);
    },
    unknown: (name) => new UsageError(`unknown flag --${name} (see --help)`),
    fail: (message) => new UsageError(message),
  });
  const certs = [out.etcdCertFile, out.etcdKeyFile].filter((x) => x !== undefined).length;
  if (certs === 1) throw new UsageError('--etcd-certfile and --etcd-keyfile must be given together');
  if ((out.etcdUsername === undefined) !== (out.etcdPassword === undefined)) {
    throw new UsageError('--etcd-username and --etcd-password must be given together');
  }
  const margin = (out.subnetLeaseRenewMarginMinutes as number) * 60;
  if (margin >= (out.subnetLeaseTtlSeconds as number)) {
    // A margin as long as the lease would renew continuously; for short test TTLs renew at half-life instead.
    out.subnetLeaseRenewMarginMinutes = (out.subnetLeaseTtlSeconds as number) / 2 / 60;
  }
  return Object.freeze(out) as unknown as AgentConfig;
}

export function usage(): string {
  const lines = ['Usage: weftd [flags]', '', 'weftd leases a subnet from etcd and connects this host\'s containers to every other host.', '', 'Flags (each also from the environment variable shown):'];
  for (const f of FLAGS) {
    const val = f.kind === 'bool' ? '' : f.kind === 'int' ? ' N' : ' VALUE';
    const def = f.def !== undefined && f.kind !== 'bool' ? ` (default ${f.def})` : '';
    lines.push(`  --${f.name}${val}`.padEnd(40) + `${f.help}${def}`);
    if (f.name !== 'help' && f.name !== 'version') lines.push(''.padEnd(40) + `env ${envName(f.name)}`);
  }
  lines.push('', 'Exit status: 0 after SIGTERM/SIGINT (kernel state and lease are kept), 1 on a runtime failure, 2 on bad flags or network config.');
  return lines.join('\n');
}
