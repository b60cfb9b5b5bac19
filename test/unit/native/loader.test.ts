import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { native } from '../../../native/index.js';

test('the native addon loads and exposes netlink and tun', () => {
  const n = native();
  assert.type(n.netlink.open, 'function');
  assert.type(n.tun.open, 'function');
  assert.ok(n.tun.IFF_TUN > 0);
});

test('a NETLINK_ROUTE socket opens and closes without root', () => {
  const n = native();
  const s = n.netlink.open(0, 0);
  assert.ok(s.fd > 2);
  assert.ok(s.portId > 0);
  n.close(s.fd);
});

test('native errors carry the errno name', () => {
  const n = native();
  try {
    n.close(1_000_000);
    assert.unreachable('close of a bad fd must throw');
  } catch (e) {
    assert.is((e as { code: string }).code, 'EBADF');
  }
});

test.run();
