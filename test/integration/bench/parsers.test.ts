// The bench's pure parts: iperf3 JSON parsing (from a real iperf 3.12 UDP run),
// medians and percentiles, the fake leases of the scale run, /proc readers.
// No root needed; it lives beside bench-quick so the bench's tests stay together.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseIperfTcp, parseIperfUdp } from '../../../lab/iperf.js';
import { median, percentile, ratio } from '../../../bench/stats.js';
import { fakeLease } from '../../../bench/control-plane.js';
import { cpuSeconds, rssBytes } from '../../../bench/proc-stats.js';
import { decodeLeaseAttrs } from '../../../subnet-manager/lease.js';

test('iperf3 UDP: delivered = receiver packets − lost, loss over what the receiver expected', () => {
  // end.sum_received of iperf 3.12, -u -l 64 -b 0 -t 1 over a veth underlay.
  const json = {
    end: {
      sum: { seconds: 1.000039, packets: 454960, lost_packets: 18759, lost_percent: 4.12 },
      sum_sent: { seconds: 1.000013, bytes: 29117440, packets: 454960, lost_packets: 0 },
      sum_received: { seconds: 1.000039, bytes: 27916032, packets: 454947, lost_packets: 18759, lost_percent: 4.12 },
    },
  };
  const r = parseIperfUdp(json, 64);
  assert.is(r.sent, 454960);
  assert.is(r.delivered, 454947 - 18759);
  assert.is(r.delivered * 64, 27916032, 'delivered datagrams × length = bytes received');
  assert.ok(Math.abs(r.lostPct - 4.1233) < 0.001, `${r.lostPct}`);
  assert.ok(Math.abs(r.deliveredPerSecond - 436188 / 1.000039) < 1e-6);
});

test('iperf3 TCP: the receiver\'s bytes and rate; an error or missing field is an IperfError naming it', () => {
  const r = parseIperfTcp({ end: { sum_sent: { retransmits: 12 }, sum_received: { seconds: 5, bytes: 5e9, bits_per_second: 8e9 } } }, 4);
  assert.equal(r, { kind: 'tcp', streams: 4, seconds: 5, bytes: 5e9, bitsPerSecond: 8e9, retransmits: 12 });
  assert.throws(() => parseIperfTcp({ end: {} }, 1), /end\.sum_received\.seconds/);
});

test('median of repetitions skips missing values; nearest-rank percentiles', () => {
  assert.is(median([3, 1, 2]), 2);
  assert.is(median([4, 1, 3, 2]), 2.5);
  assert.is(median([undefined, 5, NaN]), 5);
  assert.is(median([]), undefined);
  const xs = Array.from({ length: 1000 }, (_, i) => i + 1);
  assert.is(percentile(xs, 50), 500);
  assert.is(percentile(xs, 99), 990);
  assert.is(percentile([7], 99), 7);
  assert.is(percentile([], 50), undefined);
  assert.is(ratio(3, 2), 1.5);
  assert.is(ratio(3, 0), undefined);
  assert.is(ratio(undefined, 2), undefined);
});

test('fake leases: distinct subnets, MACs and PublicIPs (in 198.18.0.0/15), valid flannel lease values', () => {
  const leases = Array.from({ length: 4000 }, (_, k) => fakeLease(k));
  assert.is(new Set(leases.map((l) => l.subnet)).size, 4000);
  assert.is(new Set(leases.map((l) => l.mac)).size, 4000);
  for (const l of [leases[0]!, leases[255]!, leases[256]!, leases[3999]!]) {
    const a = decodeLeaseAttrs(l.value);
    assert.is(a.publicIP, l.publicIp);
    assert.match(l.publicIp, /^198\.1[89]\.\d+\.\d+$/);
    assert.match(l.key, /\/subnets\/10\.2\d\d\.\d+\.0-24$/);
    assert.is(l.vtep, l.subnet.replace(/\/24$/, ''));
  }
  assert.is(leases[256]!.subnet, '10.201.0.0/24');
  // The scale network 10.192.0.0/11 holds every one of them, below the propagation leases (10.220.0.0 on).
  const second = (l: { subnet: string }) => Number(l.subnet.split('.')[1]);
  assert.ok(leases.every((l) => second(l) >= 192 && second(l) < 220), 'fake peers in 10.192.0.0/11, below 10.220');
  const single = Array.from({ length: 250 }, (_, k) => fakeLease(k, 220));
  assert.ok(single.every((l) => second(l) === 220), 'propagation leases in 10.220.0.0/16');
  assert.is(new Set([...leases, ...single].map((l) => l.mac)).size, 4250, 'no MAC shared between the two sets');
  assert.is(new Set([...leases, ...single].map((l) => l.publicIp)).size, 4250, 'no PublicIP shared either (it would be a conflict)');
  assert.is(leases[0]!.publicIp, '198.18.0.1');
});

test('/proc readers: this process has CPU time and resident memory; a gone pid is undefined', () => {
  const c = cpuSeconds(process.pid);
  assert.ok(c !== undefined && c > 0, `cpu ${c}`);
  const rss = rssBytes(process.pid);
  assert.ok(rss !== undefined && rss > 10 * 2 ** 20, `rss ${rss}`);
  assert.is(cpuSeconds(2 ** 22 + 1), undefined);
});

test.run();
