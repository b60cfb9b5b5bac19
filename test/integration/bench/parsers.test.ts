// The bench's pure parts: iperf3 JSON parsing (from a real iperf 3.12 UDP run),
// medians and percentiles, the fake leases of the scale run, /proc readers.
// No root needed; it lives beside bench-quick so the bench's tests stay together.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseIperfTcp, parseIperfUdp } from '../../../lab/iperf.js';
import { median, percentile, ratio } from '../../../bench/stats.js';
import { fakeLease, MAX_LEASES, MAX_PUTS, PROPAGATION_BASE, SCALE_CONFIG } from '../../../bench/control-plane.js';
import { cpuSeconds, machineBusySeconds, rssBytes, runQueueWaitSeconds } from '../../../bench/proc-stats.js';
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
  const leases = Array.from({ length: MAX_LEASES }, (_, k) => fakeLease(k));
  assert.is(new Set(leases.map((l) => l.subnet)).size, MAX_LEASES);
  assert.is(new Set(leases.map((l) => l.mac)).size, MAX_LEASES);
  for (const l of [leases[0]!, leases[255]!, leases[256]!, leases[MAX_LEASES - 1]!]) {
    const a = decodeLeaseAttrs(l.value);
    assert.is(a.publicIP, l.publicIp);
    assert.match(l.publicIp, /^198\.1[89]\.\d+\.\d+$/);
    assert.match(l.key, /\/subnets\/10\.(1[6-9]|2[0-3])\d\.\d+\.0-24$/);
    assert.is(l.vtep, l.subnet.replace(/\/24$/, ''));
  }
  assert.is(leases[256]!.subnet, '10.161.0.0/24');
  // The scale network 10.128.0.0/9 holds every one of them, below the propagation leases (10.240.0.0 on).
  assert.is(SCALE_CONFIG.Network, '10.128.0.0/9');
  const second = (l: { subnet: string }) => Number(l.subnet.split('.')[1]);
  assert.ok(leases.every((l) => second(l) >= 160 && second(l) < PROPAGATION_BASE), 'fake peers in 10.128.0.0/9, below the propagation leases');
  const single = Array.from({ length: MAX_PUTS }, (_, k) => fakeLease(k, PROPAGATION_BASE));
  assert.ok(single.every((l) => second(l) === PROPAGATION_BASE), 'propagation leases in 10.240.0.0/16');
  const n = MAX_LEASES + MAX_PUTS;
  assert.is(new Set([...leases, ...single].map((l) => l.mac)).size, n, 'no MAC shared between the two sets');
  assert.is(new Set([...leases, ...single].map((l) => l.publicIp)).size, n, 'no PublicIP shared either (it would be a conflict)');
  assert.is(leases[0]!.publicIp, '198.18.32.1');
  assert.throws(() => fakeLease(256 * 96), /outside the scale network/);
});

test('/proc readers: this process has CPU time and resident memory; a gone pid is undefined', () => {
  const c = cpuSeconds(process.pid);
  assert.ok(c !== undefined && c > 0, `cpu ${c}`);
  const rss = rssBytes(process.pid);
  assert.ok(rss !== undefined && rss > 10 * 2 ** 20, `rss ${rss}`);
  assert.is(cpuSeconds(2 ** 22 + 1), undefined);
});

test('/proc/<pid>/schedstat: a busy child sharing one CPU with another waits for it; a gone pid is undefined', async () => {
  const { spawn } = await import('node:child_process');
  // Two spinning children pinned to one CPU: each is runnable about half of the time it waits.
  const spin = () => spawn('taskset', ['-c', '0', process.execPath, '-e', 'const e = Date.now() + 600; while (Date.now() < e);'], { stdio: 'ignore' });
  const kids = [spin(), spin()];
  await new Promise((r) => setTimeout(r, 300));
  const waits = kids.map((k) => runQueueWaitSeconds(k.pid!));
  await Promise.all(kids.map((k) => new Promise((r) => k.on('exit', r))));
  assert.ok(waits.every((w) => w !== undefined && w >= 0), `${waits}`);
  assert.ok(waits.some((w) => w! > 0.02), `two spinners on one CPU waited ${waits.map((w) => w?.toFixed(3))} s`);
  assert.is(runQueueWaitSeconds(2 ** 22 + 1), undefined);
});

test('/proc/stat: the machine\'s busy seconds count user, nice, system, irq, softirq and steal, not idle or iowait', () => {
  // user nice system idle iowait irq softirq steal guest guest_nice, in 1/100 s
  assert.is(machineBusySeconds('cpu  100 1 50 9000 70 3 40 6 0 0\ncpu0 50 0 25 4500 35 1 20 3 0 0\n'), 2);
  assert.throws(() => machineBusySeconds('intr 1 2 3\n'), /no readable "cpu" line/);
  const a = machineBusySeconds();
  assert.ok(a > 0 && machineBusySeconds() >= a, `${a}`);
});

test.run();
