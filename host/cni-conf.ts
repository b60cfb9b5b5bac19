// --cni-conf: a CNI conflist that attaches containers to weft's bridge with
// the reference bridge + host-local plugins, the leased subnet, the gateway
// and the overlay MTU. Written atomically, rewritten when the lease changes.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export interface CniConfOptions {
  readonly bridge: string;
  readonly subnet: string; // 10.244.3.0/24
  readonly gateway: string; // 10.244.3.1
  readonly mtu: number;
  /** host-local's state directory; unset = the plugin's default (/var/lib/cni/networks). */
  readonly ipamDataDir?: string;
  readonly name?: string;
}

export function cniConflist(o: CniConfOptions): Record<string, unknown> {
  const ipam: Record<string, unknown> = {
    type: 'host-local',
    ranges: [[{ subnet: o.subnet, gateway: o.gateway }]],
    // No routes here: the bridge plugin's isDefaultGateway adds the default route (twice would fail with EEXIST).
  };
  if (o.ipamDataDir) ipam.dataDir = o.ipamDataDir;
  return {
    cniVersion: '1.0.0',
    name: o.name ?? 'weft',
    plugins: [
      {
        type: 'bridge',
        bridge: o.bridge,
        isGateway: true,
        isDefaultGateway: true,
        // weftd's own --ip-masq rules cover the whole overlay; a per-bridge rule would double-NAT.
        ipMasq: false,
        hairpinMode: true,
        mtu: o.mtu,
        ipam,
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  };
}

export function writeCniConf(path: string, o: CniConfOptions): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(cniConflist(o), null, 2) + '\n', { mode: 0o644 });
  renameSync(tmp, path);
}
