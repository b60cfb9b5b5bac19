// This host's WireGuard key: generated once, kept in a file of mode 0600 that
// only weftd's user may read, so a restarted agent has the same public key and
// its peers keep working. The file holds the private key as `wg genkey` (and
// flannel) write it: 44 characters of base64, here with a newline. The key
// itself never reaches a log line or an error message.
import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync, constants as fsc } from 'node:fs';
import { dirname, join } from 'node:path';
import { ConfigError } from '../../lib/errors.js';

export const KEY_LEN = 32;

export interface WgKeyPair {
  readonly privateKey: Buffer;
  readonly publicKey: Buffer;
}

/** 32 random bytes, clamped for Curve25519 as `wg genkey` does. */
export function generatePrivateKey(): Buffer {
  const k = randomBytes(KEY_LEN);
  k[0]! &= 248;
  k[31] = (k[31]! & 127) | 64;
  return k;
}

// PKCS#8 DER of an X25519 private key: this prefix, then the 32 raw bytes.
const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex');

/** X25519(private, 9): the public key peers know this host by. */
export function publicKeyOf(privateKey: Buffer): Buffer {
  if (privateKey.length !== KEY_LEN) throw new TypeError(`a WireGuard private key has ${KEY_LEN} bytes, got ${privateKey.length}`);
  const priv = createPrivateKey({ key: Buffer.concat([PKCS8_X25519, privateKey]), format: 'der', type: 'pkcs8' });
  const x = createPublicKey(priv).export({ format: 'jwk' }).x;
  if (typeof x !== 'string') throw new Error('X25519 public key export has no "x"');
  return Buffer.from(x, 'base64url');
}

/** A key in base64 (standard alphabet, padded: 44 characters), or undefined when `s` is not one. */
export function decodeKey(s: string): Buffer | undefined {
  if (!/^[A-Za-z0-9+/]{43}=$/.test(s)) return undefined;
  const b = Buffer.from(s, 'base64');
  // Stray bits in the last character would decode to the same bytes: Go's decoder (flannel's) refuses them too.
  return b.length === KEY_LEN && b.toString('base64') === s ? b : undefined;
}

export const encodeKey = (k: Buffer): string => k.toString('base64');

/**
 * Reads the key file, or makes it (and its directory, mode 0700) when it does
 * not exist. Throws ConfigError naming the file when it is not a regular file,
 * others may read or write it, another user owns it, or it holds no key.
 */
export function loadOrCreateKey(path: string, flag = '--wireguard-key-file'): WgKeyPair & { created: boolean } {
  const where = `${flag} ${path}`;
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new ConfigError(`${where}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    const privateKey = generatePrivateKey();
    writeKeyFile(path, privateKey, where);
    return { privateKey, publicKey: publicKeyOf(privateKey), created: true };
  }
  if (!st.isFile()) throw new ConfigError(`${where}: not a regular file`);
  if ((st.mode & 0o077) !== 0) {
    throw new ConfigError(`${where}: mode ${(st.mode & 0o777).toString(8).padStart(4, '0')} lets other users at the private key; it must be 0600 (chmod 600 it, or remove it to make a new key)`);
  }
  const uid = process.geteuid?.();
  if (uid !== undefined && st.uid !== uid) throw new ConfigError(`${where}: owned by uid ${st.uid}, not by weftd's uid ${uid}`);
  let text: string;
  try {
    text = readFileSync(path, 'latin1');
  } catch (e) {
    throw new ConfigError(`${where}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const privateKey = decodeKey(text.replace(/\r?\n$/, ''));
  if (!privateKey) throw new ConfigError(`${where}: not a WireGuard private key (want one line of 44 base64 characters, as \`wg genkey\` writes; remove the file to make a new key)`);
  return { privateKey, publicKey: publicKeyOf(privateKey), created: false };
}

/** Written under a temporary name with mode 0600 from the start, synced, then renamed into place. */
function writeKeyFile(path: string, key: Buffer, where: string): void {
  const dir = dirname(path);
  const tmp = join(dir, `.${path.slice(dir.length + 1)}.${process.pid}.tmp`);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const fd = openSync(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
    try {
      writeSync(fd, `${encodeKey(key)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
    const dfd = openSync(dir, 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new ConfigError(`${where}: cannot create it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}
