// What the udp backend saves for the next weftd (state.ts): written atomically,
// read back strictly, every bad field named with the file.
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readUdpState, removeUdpState, statePath, writeUdpState, type UdpState } from '../../../../backend/udp/state.js';

const dir = mkdtempSync(join(tmpdir(), 'weft-state-'));
const good: UdpState = {
  version: 1, device: 'weft-tun', engine: 'native', vnetHdr: true, mtu: 1472, bindIp: '192.0.2.11', port: 8285,
  ownSubnet: '10.244.1.0/24', network: '10.244.0.0/16',
  routes: [{ subnet: '10.244.2.0/24', peerIp: '192.0.2.12', port: 8285 }], savedAt: '2026-11-28T07:00:00.000Z',
};

test.after(() => rmSync(dir, { recursive: true, force: true }));

test('written and read back alike, in a directory made on demand, nothing left behind; none saved: undefined', () => {
  const p = statePath(join(dir, 'sub'), 'weft-tun');
  assert.is(p, join(dir, 'sub', 'udp-weft-tun.json'));
  assert.is(readUdpState(p), undefined);
  writeUdpState(p, good);
  assert.equal(readUdpState(p), good);
  assert.equal(readdirSync(join(dir, 'sub')), ['udp-weft-tun.json']);
  assert.ok(removeUdpState(p));
  assert.not.ok(removeUdpState(p));
});

test('a file that is not this shape is refused, naming the file and the field; never half-used', () => {
  const p = join(dir, 'bad.json');
  const cases: Array<[unknown, RegExp]> = [
    ['{', /bad\.json: not JSON/],
    [{ ...good, version: 2 }, /bad\.json: version 2 is not valid/],
    [{ ...good, bindIp: '10.0.0.300' }, /bindIp "10\.0\.0\.300"/],
    [{ ...good, port: 0 }, /port 0/],
    [{ ...good, engine: 'bpf' }, /engine "bpf"/],
    [{ ...good, ownSubnet: '10.244.1.1/24' }, /ownSubnet/],
    [{ ...good, routes: [{ subnet: '10.244.2.0/24', peerIp: 'x', port: 8285 }] }, /routes/],
    [{ ...good, mtu: 40 }, /mtu 40/],
  ];
  for (const [v, re] of cases) {
    writeFileSync(p, typeof v === 'string' ? v : JSON.stringify(v));
    assert.throws(() => readUdpState(p), re, JSON.stringify(v));
  }
});

test.run();
