// The delegate's network configuration, built as flannel's CNI plugin builds
// it (flannel-io/cni-plugin doCmdAdd, getDelegateIPAM): the `delegate` object
// of the plugin's config, completed from subnet.env — type bridge, isGateway,
// ipMasq = not FLANNEL_IPMASQ, the MTU — and an ipam section (host-local)
// whose ranges are this host's subnets and whose routes add the whole
// network(s) after the routes given in the config. Pure: no I/O.
import type { FlannelSubnetEnv } from '../host/subnet-env.js';
import { isIp, Prefix } from '../lib/ip.js';
import type { PluginConf } from './netconf.js';
import { CniError, CNI_ERR } from './spec.js';

type Json = Record<string, unknown>;

function configError(msg: string): CniError {
  return new CniError(CNI_ERR.INVALID_NETWORK_CONFIG, msg);
}

/** The input's ipam.routes, checked as CNI routes ({dst: CIDR, gw?: IP}). */
function ipamRoutes(ipam: Json): Json[] {
  const routes = ipam.routes;
  if (routes === undefined) return [];
  const fail = (why: string) => configError(`failed to read IPAM routes: failed to parse ipam.routes: ${why}`);
  if (!Array.isArray(routes)) throw fail(`must be a list, got ${JSON.stringify(routes)}`);
  return routes.map((r: unknown, i) => {
    if (typeof r !== 'object' || r === null || Array.isArray(r)) throw fail(`routes[${i}] ${JSON.stringify(r)} is not an object`);
    const { dst, gw } = r as Json;
    try {
      Prefix.parse(String(dst), { mask: true });
    } catch {
      throw fail(`routes[${i}].dst ${JSON.stringify(dst)} is not a CIDR`);
    }
    if (gw !== undefined && !isIp(gw)) throw fail(`routes[${i}].gw ${JSON.stringify(gw)} is not an IP address`);
    return { ...(r as Json) };
  });
}

export function delegateIpam(conf: PluginConf, env: FlannelSubnetEnv): Json {
  const ipam: Json = { ...(conf.ipam ?? {}) };
  if (ipam.type === undefined) ipam.type = 'host-local';
  const ranges: Json[][] = [];
  if (env.subnet) ranges.push([{ subnet: env.subnet.toString() }]);
  if (env.ipv6Subnet) ranges.push([{ subnet: env.ipv6Subnet.toString() }]);
  ipam.ranges = ranges;
  ipam.routes = [...ipamRoutes(conf.ipam ?? {}), ...env.networks.map((n) => ({ dst: n.toString() })), ...env.ipv6Networks.map((n) => ({ dst: n.toString() }))];
  return ipam;
}

/** The delegate's config for ADD (saved, and used again for DEL). Errors name the bad key, as flannel's do. */
export function buildDelegate(conf: PluginConf, env: FlannelSubnetEnv): Json {
  const d: Json = { ...(conf.delegate ?? {}) };
  if (d.type !== undefined && typeof d.type !== 'string') throw configError("'delegate' dictionary, if present, must have (string) 'type' field");
  if (d.name !== undefined) throw configError("'delegate' dictionary must not have 'name' field, it'll be set by flannel");
  if (d.ipam !== undefined) throw configError("'delegate' dictionary must not have 'ipam' field, it'll be set by flannel");
  d.name = conf.name;
  if (d.type === undefined) d.type = 'bridge';
  // If weftd does not masquerade, the bridge plugin should (flannel's rule).
  if (d.ipMasq === undefined) d.ipMasq = env.ipMasq !== 'true';
  if (d.mtu === undefined) d.mtu = env.mtu;
  if (d.type === 'bridge' && d.isGateway === undefined) d.isGateway = true;
  if (conf.cniVersion !== '') d.cniVersion = conf.cniVersion;
  if (conf.raw.runtimeConfig !== undefined) d.runtimeConfig = conf.raw.runtimeConfig;
  d.ipam = delegateIpam(conf, env);
  return d;
}

/** JSON with object keys sorted at every level: what Go's json.Marshal of a map writes, so saved files match flannel's. */
export function sortedJson(v: unknown): string {
  const sort = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(sort);
    if (typeof x === 'object' && x !== null) {
      return Object.fromEntries(Object.keys(x).sort().map((k) => [k, sort((x as Json)[k])]));
    }
    return x;
  };
  return JSON.stringify(sort(v));
}
