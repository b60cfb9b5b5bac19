// --cni-conf: a CNI conflist that attaches containers to this host's subnet,
// written atomically and rewritten when the lease changes. Two kinds
// (--cni-plugin):
//   bridge           the reference bridge + host-local plugins with the leased
//                    subnet, the gateway and the overlay MTU written in;
//   flannel | weft   weft's own plugin (cni/, installed by `weft install-cni`)
//                    under that name, which reads subnet.env at every ADD and
//                    delegates to bridge + host-local, as kube-flannel's
//                    conflist does with flannel's plugin.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export interface CniConfOptions {
  /** The bridge containers attach to; undefined: the bridge plugin's default (cni0). */
  readonly bridge?: string;
  readonly subnet: string; // 10.244.3.0/24
  readonly gateway: string; // 10.244.3.1
  /** Dual stack: the IPv6 subnet and its gateway (fd00:10:244:7::/64, fd00:10:244:7::1). */
  readonly ipv6?: { readonly subnet: string; readonly gateway: string };
  readonly mtu: number;
  /** host-local's state directory; unset = the plugin's default (/var/lib/cni/networks). */
  readonly ipamDataDir?: string;
  readonly name?: string;
  /** Default 'bridge'. */
  readonly plugin?: 'bridge' | 'flannel' | 'weft';
  /** For weft's plugin: the subnet.env it reads (weftd's --subnet-file). */
  readonly subnetFile?: string;
}

const PORTMAP = { type: 'portmap', capabilities: { portMappings: true } };

export function cniConflist(o: CniConfOptions): Record<string, unknown> {
  const plugin = o.plugin ?? 'bridge';
  if (plugin !== 'bridge') {
    return {
      cniVersion: '1.0.0',
      name: o.name ?? 'weft',
      plugins: [
        {
          type: plugin,
          ...(o.subnetFile ? { subnetFile: o.subnetFile } : {}),
          // The delegate's ipam gets ranges and routes from subnet.env; only host-local's state directory is ours to set.
          ...(o.ipamDataDir ? { ipam: { dataDir: o.ipamDataDir } } : {}),
          delegate: { ...(o.bridge ? { bridge: o.bridge } : {}), hairpinMode: true, isDefaultGateway: true },
        },
        PORTMAP,
      ],
    };
  }
  const ipam: Record<string, unknown> = {
    type: 'host-local',
    // One range set per family: host-local gives each container one address of each.
    ranges: [[{ subnet: o.subnet, gateway: o.gateway }], ...(o.ipv6 ? [[{ subnet: o.ipv6.subnet, gateway: o.ipv6.gateway }]] : [])],
    // No routes here: the bridge plugin's isDefaultGateway adds the default route of each family
    // (0.0.0.0/0, and ::/0 via the IPv6 gateway); twice would fail with EEXIST.
  };
  if (o.ipamDataDir) ipam.dataDir = o.ipamDataDir;
  return {
    cniVersion: '1.0.0',
    name: o.name ?? 'weft',
    plugins: [
      {
        type: 'bridge',
        ...(o.bridge ? { bridge: o.bridge } : {}),
        isGateway: true,
        isDefaultGateway: true,
        // weftd's own --ip-masq rules cover the whole overlay; a per-bridge rule would double-NAT.
        ipMasq: false,
        hairpinMode: true,
        mtu: o.mtu,
        ipam,
      },
      PORTMAP,
    ],
  };
}

export function writeCniConf(path: string, o: CniConfOptions): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(cniConflist(o), null, 2) + '\n', { mode: 0o644 });
  renameSync(tmp, path);
}
