// Property tests of the subnet.env reader: weftd reads the previous run's file (which anyone
// may have edited, truncated or filled with junk) to keep its subnet across restarts. For any
// content it returns a masked IPv4 subnet or undefined, never throws; what weftd writes it
// reads back exactly.
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import { fc, property } from '../property.js';
import { Prefix } from '../../../lib/ip.js';
import { formatSubnetEnv, parseEnvFile, readPreviousSubnet, writeSubnetEnv } from '../../../host/subnet-env.js';

const dir = mkdtempSync(join(tmpdir(), 'weft-subnet-env-prop-'));
const file = join(dir, 'subnet.env');
test.after(() => rmSync(dir, { recursive: true, force: true }));

const octet = fc.integer({ min: 0, max: 255 });
const ip4 = fc.tuple(octet, octet, octet, octet).map((o) => o.join('.'));
const env = fc.record({
  network: fc.tuple(ip4, fc.integer({ min: 0, max: 32 })).map(([a, l]) => Prefix.containing(a, l).toString()),
  subnet: fc.tuple(ip4, fc.integer({ min: 0, max: 32 })).map(([a, l]) => `${a}/${l}`),
  mtu: fc.integer({ min: 68, max: 65535 }),
  ipMasq: fc.boolean(),
});
const line = fc.oneof(
  fc.string(),
  fc.tuple(fc.constantFrom('FLANNEL_SUBNET', 'FLANNEL_NETWORK', 'FLANNEL_MTU', 'X', ' FLANNEL_SUBNET', '#FLANNEL_SUBNET', ''), fc.constantFrom('=', ' = ', '=='),
    fc.oneof(fc.string(), ip4, fc.tuple(ip4, fc.integer({ min: -1, max: 40 })).map(([a, l]) => `${a}/${l}`), fc.ipV6().map((a) => `${a}/64`))).map(([k, eq, v]) => `${k}${eq}${v}`),
);
const content = fc.oneof(fc.tuple(fc.array(line, { maxLength: 8 }), fc.constantFrom('\n', '\r\n')).map(([ls, nl]) => ls.join(nl)), env.map(formatSubnetEnv), fc.string({ unit: 'binary' }));

property('readPreviousSubnet: any file content gives a masked IPv4 subnet or undefined, never a throw', fc.property(content, (text) => {
  writeFileSync(file, text);
  const p = readPreviousSubnet(file);
  if (p === undefined) return;
  assert.is(p.family, 4);
  assert.ok(Prefix.parse(p.toString()).equals(p), `${p} is masked`);
  const raw = parseEnvFile(text).get('FLANNEL_SUBNET');
  assert.ok(raw !== undefined && Prefix.parse(raw, { mask: true, family: 4 }).equals(p));
}), 0.5);

property('parseEnvFile reads back every key and value formatSubnetEnv writes', fc.property(env, (e) => {
  const m = parseEnvFile(formatSubnetEnv(e));
  assert.equal([...m], [['FLANNEL_NETWORK', e.network], ['FLANNEL_SUBNET', e.subnet], ['FLANNEL_MTU', String(e.mtu)], ['FLANNEL_IPMASQ', String(e.ipMasq)]]);
}));

property('writeSubnetEnv then readPreviousSubnet gives the written subnet, masked', fc.property(env, (e) => {
  writeSubnetEnv(file, e);
  const p = readPreviousSubnet(file);
  assert.ok(p?.equals(Prefix.parse(e.subnet, { mask: true, family: 4 })), `${e.subnet} -> ${p}`);
}), 0.2);

test('a missing file is undefined', () => {
  assert.is(readPreviousSubnet(join(dir, 'nope')), undefined);
});

test.run();
