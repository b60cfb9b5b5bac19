// The bench's TCP drop counters, read from /proc/net/netstat text, and the UDP receive-buffer drops from /proc/net/snmp.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { parseTcpDrops, parseUdpRcvbufErrors, tcpDropsDelta, TCP_DROP_COUNTERS } from '../../../bench/proc-stats.js';

const SAMPLE = [
  'TcpExt: SyncookiesSent PruneCalled TCPBacklogDrop TCPRcvQDrop TCPOFODrop',
  'TcpExt: 0 3 51356 7 2',
  'IpExt: InNoRoutes InTruncatedPkts',
  'IpExt: 0 0',
  '',
].join('\n');

test('reads the named TcpExt counters by their header, absent ones as 0', () => {
  assert.equal(parseTcpDrops(SAMPLE), { TCPBacklogDrop: 51356, TCPRcvQDrop: 7, TCPOFODrop: 2, PruneCalled: 3, TCPZeroWindowDrop: 0 });
});

test('the delta of two readings, and this machine\'s own file parses to numbers', () => {
  const before = parseTcpDrops(SAMPLE);
  const after = { ...before, TCPBacklogDrop: before.TCPBacklogDrop + 10 };
  assert.is(tcpDropsDelta(before, after).TCPBacklogDrop, 10);
  assert.is(tcpDropsDelta(before, after).TCPRcvQDrop, 0);
  const own = parseTcpDrops(readFileSync('/proc/net/netstat', 'utf8'));
  for (const k of TCP_DROP_COUNTERS) assert.ok(Number.isInteger(own[k]) && own[k] >= 0, k);
});

test('Udp RcvbufErrors by its header; 0 when the line lacks it; this machine\'s own file parses', () => {
  const snmp = ['Ip: Forwarding DefaultTTL', 'Ip: 1 64', 'Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors', 'Udp: 521737 0 5674 10 5674 0', 'UdpLite: InDatagrams RcvbufErrors', 'UdpLite: 0 9', ''].join('\n');
  assert.is(parseUdpRcvbufErrors(snmp), 5674);
  assert.is(parseUdpRcvbufErrors('Udp: InDatagrams\nUdp: 3\n'), 0);
  assert.ok(Number.isInteger(parseUdpRcvbufErrors(readFileSync('/proc/net/snmp', 'utf8'))));
});

test.run();
