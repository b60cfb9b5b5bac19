// The native engine's offload switches (--udp-offload, Backend.Offload; --udp-uso), the names
// of TUN offload bits in its stats, and the vectorised checksum against a
// plain RFC 1071 reference (every length and alignment the send path sees).
import { randomBytes } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { effectiveUdpSettings, parseUdpConfig, type UdpFlagValues } from '../../../../backend/udp/config.js';
import { tunOffloadNames } from '../../../../backend/udp/native-engine.js';
import { parseWeftdFlags as parseFlags, UsageError } from '../../../../daemon/flags.js';
import { native } from '../../../../native/index.js';

test('--udp-offload: unset leaves it to Backend.Offload; =false/=true/bare; env', () => {
  assert.is(parseFlags([]).backendFlags.udpOffload, undefined);
  assert.is(parseFlags(['--udp-offload=false']).backendFlags.udpOffload, false);
  assert.is(parseFlags(['--udp-offload']).backendFlags.udpOffload, true);
  assert.is(parseFlags([], { WEFTD_UDP_OFFLOAD: '0' }).backendFlags.udpOffload, false);
  assert.throws(() => parseFlags(['--udp-offload=maybe']), (e: unknown) => e instanceof UsageError && /invalid --udp-offload "maybe": must be true or false/.test((e as Error).message));
});

test('--udp-uso: USO on the TUN unless =false (env WEFTD_UDP_USO too); a bad value named', () => {
  const uso = (argv: string[], env: Record<string, string> = {}) =>
    effectiveUdpSettings(parseUdpConfig({ Type: 'udp' }), parseFlags(argv, env).backendFlags as unknown as UdpFlagValues).uso;
  assert.is(uso([]), true);
  assert.is(uso(['--udp-uso=false']), false);
  assert.is(uso(['--udp-uso']), true);
  assert.is(uso([], { WEFTD_UDP_USO: 'false' }), false);
  assert.throws(() => parseFlags(['--udp-uso=off']), (e: unknown) => e instanceof UsageError && /invalid --udp-uso "off": must be true or false/.test((e as Error).message));
});

test('Backend.Offload: boolean or absent; anything else quoted in the error', () => {
  assert.is(parseUdpConfig({ Type: 'udp' }).offload, undefined);
  assert.is(parseUdpConfig({ Type: 'udp', Offload: null }).offload, undefined);
  assert.is(parseUdpConfig({ Type: 'udp', Offload: false }).offload, false);
  assert.is(parseUdpConfig({ Type: 'udp', Offload: true }).offload, true);
  assert.throws(() => parseUdpConfig({ Type: 'udp', Offload: 'no' }), (e: Error) => e.message === 'Backend.Offload must be true or false, got "no"');
});

test('TUN_F_* bits -> names, matching the addon\'s constants', () => {
  const t = native().tun;
  assert.equal(tunOffloadNames(0), []);
  assert.equal(tunOffloadNames(t.TUN_F_CSUM | t.TUN_F_TSO4 | t.TUN_F_TSO6 | t.TUN_F_TSO_ECN | t.TUN_F_USO4 | t.TUN_F_USO6), ['csum', 'tso4', 'tso6', 'tso_ecn', 'uso4', 'uso6']);
  assert.equal(tunOffloadNames(t.TUN_F_CSUM | t.TUN_F_TSO4), ['csum', 'tso4']);
});

function reference(b: Buffer): number {
  let s = 0;
  for (let i = 0; i + 1 < b.length; i += 2) s += b.readUInt16BE(i);
  if (b.length & 1) s += b[b.length - 1]! << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

test('checksum (SIMD sum) equals the RFC 1071 reference for lengths 0..2100 at every alignment 0..15, and 64 KiB of 0xff', () => {
  const o = native().offload;
  const pool = randomBytes(4096);
  for (let n = 0; n <= 2100; n++) {
    const off = n % 16;
    const b = pool.subarray(off, off + n);
    assert.is(o.checksum(b), reference(b), `length ${n} at offset ${off}`);
  }
  for (const n of [64, 65, 1472, 65535]) {
    const ff = Buffer.alloc(n, 0xff); // the largest word sums: carries in every lane
    assert.is(o.checksum(ff), reference(ff), `0xff x ${n}`);
  }
});

test.run();
