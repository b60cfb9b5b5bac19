// The WireGuard key: X25519 against RFC 7748's vector, and the key file's
// life: made once with mode 0600 in a 0700 directory, read back the same,
// refused (a ConfigError naming the file, never quoting the key) when others
// may read it, another user owns it, or it holds no key.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeKey, generatePrivateKey, loadOrCreateKey, publicKeyOf } from '../../../../backend/wireguard/key.js';
import { ConfigError } from '../../../../lib/errors.js';

test('X25519 public key: RFC 7748 section 6.1 (Alice)', () => {
  const priv = Buffer.from('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 'hex');
  assert.is(publicKeyOf(priv).toString('hex'), '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
});

test('generated keys are clamped like wg genkey\'s', () => {
  for (let i = 0; i < 20; i++) {
    const k = generatePrivateKey();
    assert.is(k[0]! & 7, 0);
    assert.is(k[31]! & 0xc0, 0x40);
  }
});

test('base64 keys: exactly 44 characters of 32 bytes, nothing sloppy', () => {
  const k = Buffer.alloc(32, 7).toString('base64');
  assert.ok(decodeKey(k));
  assert.is(decodeKey(k.slice(0, 43)), undefined);
  assert.is(decodeKey(` ${k}`), undefined);
  assert.is(decodeKey(Buffer.alloc(31).toString('base64')), undefined);
  // A set padding bit in the last character decodes to the same bytes; refused (Go's strict decoder, flannel's, does too).
  const b64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const sloppy = `${k.slice(0, 42)}${b64[b64.indexOf(k[42]!) ^ 1]}=`;
  assert.ok(Buffer.from(sloppy, 'base64').equals(Buffer.from(k, 'base64')));
  assert.is(decodeKey(sloppy), undefined);
});

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'weft-key-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.instance(e, ConfigError);
    return (e as Error).message;
  }
  throw new Error('no ConfigError');
}

test('made once (0600 in a new 0700 directory, base64 and a newline), then read back as the same key', () => withDir((dir) => {
  const path = join(dir, 'state', 'wireguard.key');
  const a = loadOrCreateKey(path);
  assert.is(a.created, true);
  assert.is(statSync(path).mode & 0o777, 0o600);
  assert.is(statSync(join(dir, 'state')).mode & 0o777, 0o700);
  assert.is(readFileSync(path, 'utf8'), `${a.privateKey.toString('base64')}\n`);
  const b = loadOrCreateKey(path);
  assert.is(b.created, false);
  assert.ok(b.privateKey.equals(a.privateKey));
  assert.ok(b.publicKey.equals(publicKeyOf(a.privateKey)));
}));

test('flannel\'s file (no newline, mode 0400) and wg genkey\'s are accepted', () => withDir((dir) => {
  const path = join(dir, 'wgkey');
  const k = generatePrivateKey();
  writeFileSync(path, k.toString('base64'), { mode: 0o400 });
  assert.ok(loadOrCreateKey(path).privateKey.equals(k));
}));

test('wrong permissions, garbage, a directory: exit-2 errors naming the file, never the key', () => withDir((dir) => {
  const path = join(dir, 'wireguard.key');
  const key = generatePrivateKey().toString('base64');
  writeFileSync(path, `${key}\n`, { mode: 0o600 });
  chmodSync(path, 0o644);
  const m = configError(() => loadOrCreateKey(path));
  assert.match(m, new RegExp(`^--wireguard-key-file ${path}: mode 0644 lets other users at the private key`));
  assert.not.ok(m.includes(key));
  chmodSync(path, 0o640);
  assert.match(configError(() => loadOrCreateKey(path)), /mode 0640/);
  writeFileSync(path, 'not a key at all\n', { mode: 0o600 });
  chmodSync(path, 0o600);
  const g = configError(() => loadOrCreateKey(path));
  assert.match(g, new RegExp(`^--wireguard-key-file ${path}: not a WireGuard private key`));
  assert.not.ok(g.includes('not a key at all'));
  writeFileSync(path, `${key}\n${key}\n`);
  assert.match(configError(() => loadOrCreateKey(path)), /not a WireGuard private key/);
  mkdirSync(join(dir, 'adir'));
  assert.match(configError(() => loadOrCreateKey(join(dir, 'adir'))), /adir: not a regular file/);
}));

test.run();
