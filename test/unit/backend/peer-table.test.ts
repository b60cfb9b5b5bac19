// The peer table both backends are fed from, and VXLAN's reading of a lease.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LOG_EACH_MAX, logPeerChanges, type PeerChange, PeerTable } from '../../../backend/peer-table.js';
import { parseVxlanPeer, VxlanPeer } from '../../../backend/vxlan/peer.js';
import { createLogger } from '../../../daemon/logger.js';
import { Prefix } from '../../../lib/ip.js';
import type { Lease } from '../../../subnet-manager/lease.js';

const OWN_IP = { v4: '192.0.2.11' };

function lease(subnet: string, publicIP: string, data: unknown, backendType = 'vxlan'): Lease {
  return {
    subnet: Prefix.parse(subnet),
    attrs: { publicIP, publicIPv6: null, backendType, backendData: data },
    key: `/coreos.com/network/subnets/${subnet.replace('/', '-')}`,
  };
}

const good = (n: number, mac = `02:00:00:00:00:${n.toString(16).padStart(2, '0')}`) => lease(`10.244.${n}.0/24`, `192.0.2.${20 + n}`, { VNI: 1, VtepMAC: mac });

function table() {
  const lines: string[] = [];
  const log = createLogger('warn', {}, (l) => lines.push(l));
  const t = new PeerTable<VxlanPeer>((l) => parseVxlanPeer(l, 1, OWN_IP), log);
  return { t, lines };
}

test('a lease becomes a VXLAN peer whose VTEP address is <subnet>.0', () => {
  const r = parseVxlanPeer(good(3, 'C6:D2:32:6F:8F:44'), 1, OWN_IP);
  assert.ok('peer' in r);
  if ('peer' in r) {
    assert.is(r.peer.vtepIp, '10.244.3.0');
    assert.is(r.peer.mac, 'c6:d2:32:6f:8f:44');
    assert.is(r.peer.publicIp.v4, '192.0.2.23');
  }
});

const rejects: Array<[string, Lease, RegExp]> = [
  ['missing VtepMAC', lease('10.244.5.0/24', '192.0.2.25', { VNI: 1 }), /VtepMAC undefined is not a unicast MAC/],
  ['multicast VtepMAC', lease('10.244.5.0/24', '192.0.2.25', { VtepMAC: '01:00:5e:00:00:01' }), /VtepMAC "01:00:5e:00:00:01"/],
  ['BackendData not an object', lease('10.244.5.0/24', '192.0.2.25', 'c6:d2:32:6f:8f:44'), /BackendData must be an object/],
  ['other VNI', lease('10.244.5.0/24', '192.0.2.25', { VNI: 2, VtepMAC: '02:00:00:00:00:05' }), /VNI 2 differs from this network's VNI 1/],
  ['udp lease', lease('10.244.5.0/24', '192.0.2.25', null, 'udp'), /BackendType "udp" is not "vxlan"/],
  ['our own public IP', lease('10.244.5.0/24', OWN_IP.v4, { VtepMAC: '02:00:00:00:00:05' }), /is this host's own address/],
];
for (const [name, l, re] of rejects) {
  test(`rejects a lease with ${name}`, () => {
    const r = parseVxlanPeer(l, 1, OWN_IP);
    assert.ok('error' in r);
    if ('error' in r) assert.match(r.error, re);
  });
}

test('snapshot, then add, change and remove events give exactly the changes', () => {
  const { t } = table();
  let c = t.apply({ snapshot: true, events: [good(1), good(2)].map((lease) => ({ type: 'added' as const, lease })) });
  assert.equal(c.map((x) => [x.subnet, !!x.before, !!x.after]), [['10.244.1.0/24', false, true], ['10.244.2.0/24', false, true]]);
  c = t.apply({ snapshot: false, events: [{ type: 'added', lease: good(2) }] });
  assert.is(c.length, 0, 'the same value again is no change');
  c = t.apply({ snapshot: false, events: [{ type: 'added', lease: good(2, '02:00:00:00:aa:02') }, { type: 'removed', lease: good(1) }] });
  assert.equal(c.map((x) => [x.subnet, x.before?.mac, x.after?.mac]), [
    ['10.244.1.0/24', '02:00:00:00:00:01', undefined],
    ['10.244.2.0/24', '02:00:00:00:00:02', '02:00:00:00:aa:02'],
  ]);
  assert.is(t.size, 1);
});

test('a later snapshot removes peers it does not mention (after a re-list)', () => {
  const { t } = table();
  t.apply({ snapshot: true, events: [good(1), good(2), good(3)].map((lease) => ({ type: 'added' as const, lease })) });
  const c = t.apply({ snapshot: true, events: [good(2)].map((lease) => ({ type: 'added' as const, lease })) });
  assert.equal(c.map((x) => x.subnet).sort(), ['10.244.1.0/24', '10.244.3.0/24']);
  assert.ok(c.every((x) => x.after === undefined));
});

test('a bad update of a known peer keeps the good peer and is logged once with the key', () => {
  const { t, lines } = table();
  t.apply({ snapshot: true, events: [{ type: 'added', lease: good(4) }] });
  const bad = lease('10.244.4.0/24', '192.0.2.24', { VtepMAC: 'garbage' });
  let c = t.apply({ snapshot: false, events: [{ type: 'added', lease: bad }] });
  assert.is(c.length, 0);
  c = t.apply({ snapshot: false, events: [{ type: 'added', lease: bad }] });
  assert.is(c.length, 0);
  assert.is(t.get('10.244.4.0/24')?.mac, '02:00:00:00:00:04');
  assert.is(lines.length, 1);
  assert.is(t.invalid, 1);
  const rec = JSON.parse(lines[0]!);
  assert.is(rec.key, '/coreos.com/network/subnets/10.244.4.0-24');
  assert.match(rec.reason, /VtepMAC "garbage"/);
});

test('bad leases never enter the table; good ones beside them do', () => {
  const { t } = table();
  t.apply({
    snapshot: true,
    events: [good(1), lease('10.244.9.0/24', '192.0.2.29', {}), good(2)].map((lease) => ({ type: 'added' as const, lease })),
  });
  assert.equal([...t.entries()].map(([k]) => k).sort(), ['10.244.1.0/24', '10.244.2.0/24']);
});

test('logPeerChanges: a few changes a line each at info; a burst one summary, its per-peer debug lines built only when debug is on', () => {
  const changes = (n: number): PeerChange<string>[] => Array.from({ length: n }, (_, i) => ({ subnet: `10.1.${i}.0/24`, after: `p${i}` }));
  for (const level of ['info', 'debug'] as const) {
    const lines: string[] = [];
    let built = 0;
    const fields = (p: string) => { built++; return { peer: p }; };
    const log = createLogger(level, {}, (l) => lines.push(l));
    logPeerChanges(log, changes(3), fields);
    assert.is(built, 3);
    logPeerChanges(log, changes(LOG_EACH_MAX + 5), fields);
    assert.is(built, level === 'debug' ? 3 + LOG_EACH_MAX + 5 : 3, `${level}: fields built`);
    const msgs = lines.map((l) => JSON.parse(l).msg as string);
    assert.is(msgs.filter((m) => m === 'peer added').length, level === 'debug' ? 3 + LOG_EACH_MAX + 5 : 3);
    assert.is(msgs.filter((m) => m === 'peers changed').length, 1);
    assert.is(JSON.parse(lines.find((l) => l.includes('peers changed'))!).added, LOG_EACH_MAX + 5);
  }
});

test.run();

test('applySliced: the same changes as apply for thousands of leases, and the event loop runs meanwhile', async () => {
  const events = (from: number, n: number, type: 'added' | 'removed' = 'added') =>
    Array.from({ length: n }, (_, k) => ({ type, lease: lease(`10.${100 + ((from + k) >> 8)}.${(from + k) & 255}.0/24`, `198.18.${(from + k) >> 8}.${(from + k) & 255}`, { VNI: 1, VtepMAC: `02:00:00:00:${(((from + k) >> 8) & 255).toString(16).padStart(2, '0')}:${((from + k) & 255).toString(16).padStart(2, '0')}` }) }));
  const a = table().t;
  const b = table().t;
  const batches = [
    { snapshot: true, events: events(0, 3000) },
    { snapshot: false, events: [...events(0, 500, 'removed'), ...events(3000, 2000)] },
    { snapshot: true, events: events(1000, 3000) },
  ];
  let ticks = 0;
  const timer = setInterval(() => ticks++, 0);
  try {
    for (const batch of batches) {
      const want = a.apply(batch);
      const got = await b.applySliced(batch);
      assert.equal(got.map((c) => [c.subnet, c.before?.dst, c.after?.dst]), want.map((c) => [c.subnet, c.before?.dst, c.after?.dst]));
      assert.equal([...b.entries()].map(([k, p]) => [k, p.mac]).sort(), [...a.entries()].map(([k, p]) => [k, p.mac]).sort());
    }
  } finally {
    clearInterval(timer);
  }
  assert.is(b.size, 3000);
  assert.ok(ticks > 0, 'timers ran between slices');
});
