// The VTEP MAC: derived so it survives restarts, and what a peer may use.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { stableVtepMac, validVtepMac } from '../../../../backend/vxlan/vtep-mac.js';

test('the VTEP MAC is stable, unicast, locally administered and differs per host and VNI', () => {
  const a = stableVtepMac('192.0.2.11', 1, '/coreos.com/network');
  assert.is(a, stableVtepMac('192.0.2.11', 1, '/coreos.com/network'));
  assert.is.not(a, stableVtepMac('192.0.2.12', 1, '/coreos.com/network'));
  assert.is.not(a, stableVtepMac('192.0.2.11', 2, '/coreos.com/network'));
  assert.ok(validVtepMac(a));
  assert.is(parseInt(a.slice(0, 2), 16) & 3, 2);
});

test('VTEP MAC validation rejects malformed, multicast and zero addresses', () => {
  assert.ok(validVtepMac('c6:d2:32:6f:8f:44'));
  assert.ok(validVtepMac('C6:D2:32:6F:8F:44'));
  for (const m of ['', 'c6:d2:32:6f:8f', '01:00:5e:00:00:01', '00:00:00:00:00:00', 'zz:d2:32:6f:8f:44', 42, null]) {
    assert.not.ok(validVtepMac(m), String(m));
  }
});

test.run();
