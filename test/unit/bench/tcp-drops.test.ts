// The bench's TCP drop counters, read from /proc/net/netstat text.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { parseTcpDrops, tcpDropsDelta, TCP_DROP_COUNTERS } from '../../../bench/proc-stats.js';

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

test.run();
