// --state-dir's VTEP salt: two hosts that share a public IP (behind one NAT) derive different
// VTEP MACs; one host keeps its salt, so its MAC, across restarts; a host upgraded from a weft
// without the salt keeps the unsalted MAC its device carries; an unreadable file is named.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stableVtepMac } from '../../../backend/vxlan/vtep-mac.js';
import { vtepSalt } from '../../../host/state-dir.js';

const root = mkdtempSync(join(tmpdir(), 'weft-state-'));
test.after(() => rmSync(root, { recursive: true, force: true }));
const mac = (dir: string, legacy = false) => stableVtepMac('203.0.113.7', 1, '/coreos.com/network', vtepSalt(dir, () => legacy));

test('two hosts behind one public IP get different VTEP MACs; each keeps its own across restarts', () => {
  const a = mac(join(root, 'a'));
  const b = mac(join(root, 'b'));
  assert.is.not(a, b);
  assert.is(mac(join(root, 'a')), a, 'same state dir, same MAC');
  assert.match(readFileSync(join(root, 'a', 'vtep-salt'), 'utf8'), /^[0-9a-f]{32}\n$/);
});

test('an upgraded host whose device carries the unsalted MAC keeps it (salt "legacy")', () => {
  const dir = join(root, 'old');
  assert.is(mac(dir, true), stableVtepMac('203.0.113.7', 1, '/coreos.com/network'));
  assert.is(readFileSync(join(dir, 'vtep-salt'), 'utf8'), 'legacy\n');
  assert.is(mac(dir, false), stableVtepMac('203.0.113.7', 1, '/coreos.com/network'), 'kept on the next start too');
});

test('a state dir that cannot be read is named in the error', () => {
  const file = join(root, 'not-a-dir');
  writeFileSync(file, 'x');
  assert.throws(() => vtepSalt(join(file, 'sub'), () => false), /cannot read .*not-a-dir\/sub\/vtep-salt \(--state-dir\)/);
});

test.run();
