// The plugin's network configuration (stdin), read as flannel's CNI plugin
// reads it (flannel-io/cni-plugin NetConf): the standard keys plus
// subnetFile, dataDir, delegate and ipam; and weft's one addition,
// subnetFileTimeout, how long ADD waits for weftd to write subnet.env.
import { checkNetworkName, checkVersion, CniError, CNI_ERR } from './spec.js';

export const DEFAULT_SUBNET_FILE = '/run/flannel/subnet.env';
export const DEFAULT_DATA_DIR = '/var/lib/cni/flannel';
/** Seconds ADD waits for subnet.env before answering "weftd is not ready". */
export const DEFAULT_SUBNET_FILE_TIMEOUT = 10;

export interface PluginConf {
  /** Everything as given (a delegate gets the runtimeConfig and prevResult from it). */
  readonly raw: Readonly<Record<string, unknown>>;
  /** As given; '' when absent. */
  readonly cniVersion: string;
  readonly name: string;
  readonly subnetFile: string;
  readonly dataDir: string;
  readonly subnetFileTimeoutMs: number;
  readonly delegate?: Readonly<Record<string, unknown>>;
  readonly ipam?: Readonly<Record<string, unknown>>;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function invalid(key: string, v: unknown, want: string): CniError {
  return new CniError(CNI_ERR.INVALID_NETWORK_CONFIG, `${key} must be ${want}, got ${JSON.stringify(v)}`);
}

/** Decodes stdin: not JSON (or not an object) is code 6, a bad name or key 7, an unsupported cniVersion 1. */
export function parsePluginConf(stdin: string, opts: { checkVersion: boolean }): PluginConf {
  let raw: unknown;
  try {
    raw = JSON.parse(stdin);
  } catch (e) {
    throw new CniError(CNI_ERR.DECODING_FAILURE, `error unmarshall network config: ${(e as Error).message}`);
  }
  if (!isObject(raw)) throw new CniError(CNI_ERR.DECODING_FAILURE, `error unmarshall network config: not a JSON object: ${JSON.stringify(stdin.slice(0, 80))}`);
  const name = checkNetworkName(raw.name);
  if (raw.cniVersion !== undefined && typeof raw.cniVersion !== 'string') throw invalid('cniVersion', raw.cniVersion, 'a string');
  if (opts.checkVersion) checkVersion(raw.cniVersion);
  const str = (key: string, def: string): string => {
    const v = raw[key];
    if (v === undefined) return def;
    if (typeof v !== 'string' || v === '') throw invalid(key, v, 'a non-empty string');
    return v;
  };
  const timeout = raw.subnetFileTimeout ?? DEFAULT_SUBNET_FILE_TIMEOUT;
  if (typeof timeout !== 'number' || !Number.isFinite(timeout) || timeout < 0 || timeout > 600) {
    throw invalid('subnetFileTimeout', raw.subnetFileTimeout, 'a number of seconds from 0 to 600');
  }
  for (const k of ['delegate', 'ipam'] as const) if (raw[k] !== undefined && !isObject(raw[k])) throw invalid(k, raw[k], 'an object');
  return Object.freeze({
    raw,
    cniVersion: (raw.cniVersion as string | undefined) ?? '',
    name,
    subnetFile: str('subnetFile', DEFAULT_SUBNET_FILE),
    dataDir: str('dataDir', DEFAULT_DATA_DIR),
    subnetFileTimeoutMs: Math.round(timeout * 1000),
    ...(raw.delegate !== undefined ? { delegate: raw.delegate as Record<string, unknown> } : {}),
    ...(raw.ipam !== undefined ? { ipam: raw.ipam as Record<string, unknown> } : {}),
  });
}
