// WireGuard in the lab: reading a host's device with wg(8) (the tests' oracle,
// run in the host's own /run so it finds wireguard-go's socket), and a host set
// up by hand the way flannel's wireguard backend sets one up, for interop:
//   wireguard-go flannel-wg | ip link add flannel-wg type wireguard
//   wg set flannel-wg private-key <wg genkey> listen-port 51820
//   ip addr add <subnet>.0/32 dev flannel-wg; ip link set flannel-wg mtu <M> up
//   ip route replace <Network> dev flannel-wg scope link
//   etcdctl put <prefix>/subnets/<subnet> '{"PublicIP":...,"BackendType":"wireguard","BackendData":{"PublicKey":...,"Port":51820}}' --lease <id>
//   per lease: wg set flannel-wg peer <PublicKey> persistent-keepalive 0 endpoint <PublicIP>:<Port> allowed-ips <subnet>
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Prefix } from '../lib/ip.js';
import type { Lab, LabContainer, LabHost, TrackedProcess } from './lab.js';
import { randomBytes } from 'node:crypto';
import { addNetns, delNetns, exec, execOk } from './netns.js';

export interface WgDumpPeer {
  publicKey: string;
  presharedKey: string | null;
  endpoint: string | null;
  allowedIps: string[];
  /** Seconds since the epoch; 0 = never. */
  latestHandshake: number;
  rxBytes: number;
  txBytes: number;
  /** Seconds; null = off. */
  keepalive: number | null;
}

export interface WgDump {
  privateKey: string;
  publicKey: string;
  listenPort: number;
  peers: WgDumpPeer[];
}

/** `wg show DEV dump`: the device line, then one tab-separated line per peer. */
export function parseWgDump(text: string): WgDump {
  const [dev, ...peers] = text.trim().split('\n').map((l) => l.split('\t'));
  if (!dev || dev.length < 4) throw new Error(`not a wg dump: ${JSON.stringify(text.slice(0, 200))}`);
  const none = (s: string | undefined) => (s === undefined || s === '(none)' || s === 'off' ? null : s);
  return {
    privateKey: dev[0]!,
    publicKey: dev[1]!,
    listenPort: Number(dev[2]),
    peers: peers.filter((p) => p.length >= 8).map((p) => ({
      publicKey: p[0]!,
      presharedKey: none(p[1]),
      endpoint: none(p[2]),
      allowedIps: p[3] === '(none)' ? [] : p[3]!.split(','),
      latestHandshake: Number(p[4]),
      rxBytes: Number(p[5]),
      txBytes: Number(p[6]),
      keepalive: none(p[7]) === null ? null : Number(p[7]),
    })),
  };
}

/** wg(8) run on a lab host: in its namespace and with its own /run. */
export async function wgOn(lab: Lab, host: LabHost, args: readonly string[], input?: string): Promise<string> {
  const r = await lab.execIn(host.ns, 'wg', args, { runDir: host.runDir, ...(input !== undefined ? { input } : {}) });
  if (r.code !== 0) throw new Error(`wg ${args.join(' ')} on ${host.name}: exit ${r.code}: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

export async function wgDump(lab: Lab, host: LabHost, device = 'weft-wg'): Promise<WgDump> {
  return parseWgDump(await wgOn(lab, host, ['show', device, 'dump']));
}

/** Runs etcdctl (v3) against the lab's etcd from the test process; stdout. */
export function etcdctl(lab: Lab, args: readonly string[]): Promise<string> {
  return execOk('etcdctl', [`--endpoints=${lab.etcd!.endpoints.join(',')}`, ...args], { env: { ...process.env, ETCDCTL_API: '3' } });
}

export interface FlannelWgNode {
  readonly host: LabHost;
  readonly device: string;
  readonly subnet: Prefix;
  readonly publicKey: string;
  readonly leaseKey: string;
  /** wireguard-go, for a userspace device. */
  readonly proc?: TrackedProcess;
  container?: LabContainer;
}

export interface FlannelNodeOptions {
  /** The lease this node takes, e.g. 10.244.250.0/24 (outside the agents' SubnetMax). */
  readonly subnet: string;
  readonly network: string;
  readonly impl: 'userspace' | 'kernel';
  readonly prefix?: string;
  /** Underlay MTU; the device gets 80 less, as flannel computes it. */
  readonly underlayMtu?: number;
  readonly port?: number;
}

/** A host made into a flannel wireguard node by hand, with a container on a bridge of its subnet. */
export async function startFlannelWireguardNode(lab: Lab, host: LabHost, o: FlannelNodeOptions): Promise<FlannelWgNode> {
  const device = 'flannel-wg';
  const port = o.port ?? 51820;
  const mtu = (o.underlayMtu ?? 1500) - 80;
  const subnet = Prefix.parse(o.subnet);
  const ipn = (args: string[]) => lab.execIn(host.ns, 'ip', args).then((r) => {
    if (r.code !== 0) throw new Error(`ip ${args.join(' ')} on ${host.name}: ${r.stderr.trim()}`);
  });
  const privateKey = (await wgOn(lab, host, ['genkey'])).trim();
  const publicKey = (await wgOn(lab, host, ['pubkey'], `${privateKey}\n`)).trim();
  // flannel's key file: base64 without a newline, mode 0400.
  const keyFile = join(host.dir, 'flannel-wgkey');
  writeFileSync(keyFile, privateKey, { mode: 0o400 });
  let proc: TrackedProcess | undefined;
  if (o.impl === 'userspace') {
    proc = lab.spawnIn(host.ns, 'wireguard-go', ['-f', device], { runDir: host.runDir, logName: `${host.name}-flannel-wireguard-go`, env: { ...process.env, WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD: '1', LOG_LEVEL: 'error' } });
    const t0 = Date.now();
    for (;;) {
      const r = await lab.execIn(host.ns, 'wg', ['show', device], { runDir: host.runDir });
      if (r.code === 0) break;
      if (Date.now() - t0 > 5000 || proc.exitCode !== null) throw new Error(`wireguard-go ${device} on ${host.name} did not come up: ${r.stderr.trim()} ${lab.readLog(proc).slice(-500)}`);
      await new Promise((res) => setTimeout(res, 50));
    }
  } else {
    await ipn(['link', 'add', device, 'mtu', String(mtu), 'type', 'wireguard']);
  }
  await ipn(['link', 'set', device, 'mtu', String(mtu)]);
  await wgOn(lab, host, ['set', device, 'private-key', keyFile, 'listen-port', String(port)]);
  await ipn(['addr', 'add', `${subnet.address(0)}/32`, 'dev', device]);
  await ipn(['link', 'set', device, 'up']);
  await ipn(['route', 'replace', o.network, 'dev', device, 'scope', 'link']);
  await lab.execIn(host.ns, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  const prefix = o.prefix ?? '/coreos.com/network';
  const leaseKey = `${prefix}/subnets/${subnet.networkAddress}-${subnet.prefixLen}`;
  const grant = await etcdctl(lab, ['lease', 'grant', '600']);
  const id = /lease ([0-9a-f]+) granted/.exec(grant)?.[1];
  if (!id) throw new Error(`etcdctl lease grant: ${grant}`);
  const value = JSON.stringify({ PublicIP: host.underlayIp, PublicIPv6: null, BackendType: 'wireguard', BackendData: { PublicKey: publicKey, Port: port } });
  await etcdctl(lab, ['put', leaseKey, value, `--lease=${id}`]);
  const node: FlannelWgNode = { host, device, subnet, publicKey, leaseKey, ...(proc ? { proc } : {}) };
  node.container = await lab.addContainer(host, { bridge: 'cni0', subnet: subnet.toString(), gateway: subnet.address(1), mtu });
  return node;
}

/** What flannel does for every wireguard lease but its own (handleSubnetEvents → addPeer); returns the peers added. */
export async function flannelAddPeers(lab: Lab, node: FlannelWgNode, prefix = '/coreos.com/network'): Promise<string[]> {
  const out = (await etcdctl(lab, ['get', '--prefix', `${prefix}/subnets/`])).trim().split('\n');
  const added: string[] = [];
  for (let i = 0; i + 1 < out.length; i += 2) {
    const key = out[i]!;
    if (key === node.leaseKey) continue;
    const v = JSON.parse(out[i + 1]!) as { PublicIP: string; BackendType: string; BackendData: { PublicKey: string; Port?: number } };
    if (v.BackendType !== 'wireguard') continue;
    const m = /\/subnets\/([0-9.]+)-(\d+)$/.exec(key)!;
    const port = v.BackendData.Port || 51820;
    await wgOn(lab, node.host, ['set', node.device, 'peer', v.BackendData.PublicKey, 'persistent-keepalive', '0', 'endpoint', `${v.PublicIP}:${port}`, 'allowed-ips', `${m[1]}/${m[2]}`]);
    added.push(v.BackendData.PublicKey);
  }
  return added;
}

/**
 * Can this machine's kernel make a WireGuard device? Tried in a scratch
 * namespace (never the machine's own); `why` is the kernel's answer when not.
 */
export async function kernelWireguardSupport(): Promise<{ ok: true } | { ok: false; why: string }> {
  const ns = `wt${randomBytes(3).toString('hex').slice(0, 5)}-wgprobe`;
  await addNetns(ns);
  try {
    const r = await exec('ip', ['-n', ns, 'link', 'add', 'wgprobe', 'type', 'wireguard']);
    return r.code === 0 ? { ok: true } : { ok: false, why: `ip link add type wireguard: ${(r.stderr || r.stdout).trim()}` };
  } finally {
    await delNetns(ns);
  }
}
