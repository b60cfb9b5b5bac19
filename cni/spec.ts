// The CNI protocol as a plugin sees it (CNI SPEC.md 1.1.0, and where the spec
// leaves room, what the Go library's skel does, since runtimes are tested
// against it): the environment variables per command, the well-known error
// codes, the error object a plugin prints on stdout, and version checks.

/** cniVersion values this plugin accepts (flannel's plugin: the Go library's version.All). */
export const SUPPORTED_VERSIONS: readonly string[] = ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];
export const CURRENT_VERSION = '1.1.0';

/** Well-known error codes (SPEC.md "Error"); 100+ are plugin-specific. */
export const CNI_ERR = Object.freeze({
  INCOMPATIBLE_VERSION: 1,
  UNSUPPORTED_FIELD: 2,
  UNKNOWN_CONTAINER: 3,
  INVALID_ENVIRONMENT: 4,
  IO_FAILURE: 5,
  DECODING_FAILURE: 6,
  INVALID_NETWORK_CONFIG: 7,
  INVALID_NETNS: 8,
  TRY_AGAIN_LATER: 11,
  PLUGIN_NOT_AVAILABLE: 50,
  /** weft: subnet.env is malformed or lacks a key. */
  BAD_SUBNET_ENV: 100,
  /** weft: the delegate plugin could not be run or answered nonsense. */
  DELEGATE_FAILED: 101,
  /** The Go library's code for an error without one; a delegate may report it. */
  INTERNAL: 999,
});

/** An error the plugin reports as the spec's error object: {cniVersion, code, msg, details}. */
export class CniError extends Error {
  constructor(
    readonly cniCode: number,
    message: string,
    readonly details = '',
  ) {
    super(message);
    this.name = 'CniError';
  }

  /** The JSON printed on stdout (the runtime parses it; stderr is free-form). */
  toJSON(cniVersion?: string): Record<string, unknown> {
    return { ...(cniVersion ? { cniVersion } : {}), code: this.cniCode, msg: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'VERSION' | 'GC' | 'STATUS';
const COMMANDS: readonly string[] = ['ADD', 'DEL', 'CHECK', 'VERSION', 'GC', 'STATUS'];

export interface CniArgs {
  readonly command: CniCommand;
  readonly containerId: string;
  readonly netns: string;
  readonly ifName: string;
  readonly args: string;
  /** CNI_PATH split on ':' */
  readonly path: readonly string[];
}

/** Which variables each command needs (the Go skel's table; the spec lists CNI_PATH as optional for DEL, skel requires it). */
const REQUIRED: Record<string, readonly CniCommand[]> = {
  CNI_CONTAINERID: ['ADD', 'CHECK', 'DEL'],
  CNI_NETNS: ['ADD', 'CHECK'],
  CNI_IFNAME: ['ADD', 'CHECK', 'DEL'],
  CNI_PATH: ['ADD', 'CHECK', 'DEL', 'GC', 'STATUS'],
};

/** No CNI_COMMAND at all: the caller prints what the plugin is and exits 0 (skel does the same). */
export class NoCommand extends Error {}

/** Reads and checks the CNI_* variables; a CniError names what is missing or wrong. */
export function readCniArgs(env: Readonly<Record<string, string | undefined>>): CniArgs {
  const get = (k: string) => env[k] ?? '';
  const command = get('CNI_COMMAND');
  if (command === '') throw new NoCommand();
  const missing = Object.entries(REQUIRED).filter(([k, cmds]) => get(k) === '' && cmds.includes(command as CniCommand)).map(([k]) => k);
  if (missing.length) throw new CniError(CNI_ERR.INVALID_ENVIRONMENT, `required env variables [${missing.join(',')}] missing`);
  if (!COMMANDS.includes(command)) throw new CniError(CNI_ERR.INVALID_ENVIRONMENT, `unknown CNI_COMMAND: ${command}`);
  const a: CniArgs = {
    command: command as CniCommand,
    containerId: get('CNI_CONTAINERID'),
    netns: get('CNI_NETNS'),
    ifName: get('CNI_IFNAME'),
    args: get('CNI_ARGS'),
    path: get('CNI_PATH').split(':').filter(Boolean),
  };
  if (['ADD', 'DEL', 'CHECK'].includes(a.command)) {
    checkContainerId(a.containerId);
    checkIfName(a.ifName);
  }
  return Object.freeze(a);
}

const ID_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export function checkContainerId(id: string): void {
  if (id === '') throw new CniError(CNI_ERR.UNKNOWN_CONTAINER, 'missing containerID');
  if (!ID_RE.test(id)) throw new CniError(CNI_ERR.INVALID_ENVIRONMENT, `invalid characters in containerID ${JSON.stringify(id)}`);
}

export function checkIfName(name: string): void {
  const bad = (why: string) => new CniError(CNI_ERR.INVALID_ENVIRONMENT, `CNI_IFNAME ${JSON.stringify(name)}: ${why}`);
  if (name === '') throw bad('interface name is empty');
  if (Buffer.byteLength(name) > 15) throw bad('interface name is too long (at most 15 bytes)');
  if (name === '.' || name === '..') throw bad('interface name is . or ..');
  if (/[/:\s]/.test(name)) throw bad('interface name contains / or : or whitespace characters');
}

export function checkNetworkName(name: unknown): string {
  if (typeof name !== 'string' || name === '') throw new CniError(CNI_ERR.INVALID_NETWORK_CONFIG, 'missing network name');
  if (!ID_RE.test(name)) throw new CniError(CNI_ERR.INVALID_NETWORK_CONFIG, `error: invalid characters found in network name ${JSON.stringify(name)}`);
  return name;
}

/** An unset cniVersion means 0.1.0 (the spec's first version), as the Go library decodes it. */
export function checkVersion(v: unknown): string {
  const version = v === undefined || v === '' ? '0.1.0' : v;
  if (typeof version !== 'string' || !SUPPORTED_VERSIONS.includes(version)) {
    throw new CniError(CNI_ERR.INCOMPATIBLE_VERSION, 'incompatible CNI versions', `config is ${JSON.stringify(version)}, plugin supports ${JSON.stringify(SUPPORTED_VERSIONS)}`);
  }
  return version;
}

/** a >= b for dotted versions ("0.4.0" >= "0.3.1"). */
export function versionAtLeast(a: string, b: string): boolean {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d > 0;
  }
  return true;
}
