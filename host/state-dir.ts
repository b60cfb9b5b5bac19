// --state-dir (default /var/lib/weft): what weftd keeps per host across
// restarts and reboots. Lab hosts share one filesystem and /etc/machine-id,
// so the lab gives each its own directory.
//   vtep-salt   random hex mixed into the derived VTEP MAC, so that two hosts
//               that derive it from the same inputs still get different MACs;
//               "legacy" means no salt: the MAC weft derived before the salt,
//               kept by a host that already carried it when it was upgraded.
//   underlay    the underlay interface of the last run: used when no default
//               route says which it is (a link flap removes the default route).
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const DEFAULT_STATE_DIR = '/var/lib/weft';
const LEGACY = 'legacy';

/**
 * The host's VTEP salt ('' for legacy), made on first use: a new host gets a
 * random one; a host whose VXLAN device already carries the unsalted MAC
 * (`keepsLegacyMac()`, an upgrade from a weft without the salt) keeps it, so
 * the upgrade changes nothing on the wire. Throws naming the file when it
 * cannot be read or written.
 */
export function vtepSalt(stateDir: string, keepsLegacyMac: () => boolean): string {
  const path = join(stateDir, 'vtep-salt');
  let text: string | undefined;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`cannot read ${path} (--state-dir): ${(e as Error).message}`);
  }
  if (text !== undefined && (text === LEGACY || /^[0-9a-f]{32}$/.test(text))) return text === LEGACY ? '' : text;
  const salt = keepsLegacyMac() ? LEGACY : randomBytes(16).toString('hex');
  writeStateFile(stateDir, 'vtep-salt', salt);
  return salt === LEGACY ? '' : salt;
}

/** The trimmed text of <stateDir>/<name>, or undefined when it does not exist or cannot be read. */
export function readStateFile(stateDir: string, name: string): string | undefined {
  try {
    return readFileSync(join(stateDir, name), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Writes <stateDir>/<name> atomically; throws naming the file. */
export function writeStateFile(stateDir: string, name: string, text: string): void {
  const path = join(stateDir, name);
  try {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, `${text}\n`, { mode: 0o600 });
    renameSync(tmp, path);
  } catch (e) {
    throw new Error(`cannot write ${path} (--state-dir): ${(e as Error).message}`);
  }
}
