// --peer-state-file: written when the peers changed, not every second; what
// `weft status` reads back.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PeerPathState } from '../../../backend/peer-paths.js';
import { backendBusy, BUSY_STALE_MS, PeerStateWriter, readPeerState } from '../../../daemon/peer-state.js';

const dir = mkdtempSync(join(tmpdir(), 'weft-peer-state-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const peer = (i: number, path: PeerPathState['path'] = 'vxlan'): PeerPathState => ({ subnet: `10.244.${i}.0/24`, publicIp: `192.0.2.${i}`, path, since: new Date(0) });

test('written the first time, then only when a peer changed: the same states again leave the file alone', async () => {
  const file = join(dir, 'a', 'weft-peers.json');
  const w = new PeerStateWriter(file);
  const peers = [peer(1), peer(2, 'skipped')];
  assert.is(await w.write(peers), true);
  const read = readPeerState(file);
  assert.equal(read?.peers.map((p) => [p.subnet, p.path]), [['10.244.1.0/24', 'vxlan'], ['10.244.2.0/24', 'skipped']]);
  // Unchanged (the same state objects, as backends keep them): no write, so a removed file stays removed.
  unlinkSync(file);
  assert.is(await w.write([...peers]), false);
  assert.is(readPeerState(file), undefined);
  // One peer's new state (a new object), one more peer, one fewer: each is a write.
  assert.is(await w.write([peers[0]!, peer(2, 'direct')]), true);
  assert.equal(readPeerState(file)?.peers.map((p) => p.path), ['vxlan', 'direct']);
  const three = [peers[0]!, peer(2, 'direct'), peer(3)];
  assert.is(await w.write(three), true);
  assert.is(await w.write(three.slice(0, 2)), true);
  assert.is(readPeerState(file)?.peers.length, 2);
  assert.is(await w.write([]), true);
  assert.equal(readPeerState(file)?.peers, []);
});

test('10,000 peers: one file weft status parses, written once', async () => {
  const file = join(dir, 'big.json');
  const w = new PeerStateWriter(file);
  const peers = Array.from({ length: 10_000 }, (_, i) => peer(i));
  assert.is(await w.write(peers), true);
  const size = statSync(file).size;
  assert.is(readPeerState(file)?.peers.length, 10_000);
  assert.is(await w.write(peers), false);
  assert.is(statSync(file).size, size);
});

test('a failed write is tried again next time, even with the same peers', async () => {
  const blocker = join(dir, 'not-a-dir');
  writeFileSync(blocker, '');
  const w = new PeerStateWriter(join(blocker, 'weft-peers.json'));
  const peers = [peer(1)];
  await w.write(peers).then(() => assert.unreachable('wrote under a file'), (e: Error) => assert.match(e.message, /ENOTDIR|EEXIST/));
  await w.write(peers).then(() => assert.unreachable('wrote under a file'), (e: Error) => assert.match(e.message, /ENOTDIR|EEXIST/));
  unlinkSync(blocker);
  assert.is(await w.write(peers), true, 'written once the path works');
});

test('while the backend is busy programming, the file waits for it (up to BUSY_STALE_MS), then is written as usual', async () => {
  const file = join(dir, 'busy.json');
  let now = 1_000_000;
  const w = new PeerStateWriter(file, () => now);
  const first = Array.from({ length: 3 }, (_, i) => peer(i));
  assert.is(await w.write(first, true), false, 'busy from the start: nothing yet');
  now += 1000;
  assert.is(await w.write(first), true, 'settled: written');
  const more = [...first, peer(3)];
  now += 1000;
  assert.is(await w.write(more, true), false, 'busy again, written 1 s ago: waits');
  now += BUSY_STALE_MS;
  assert.is(await w.write(more, true), true, 'busy for longer than BUSY_STALE_MS: written anyway');
  assert.is(readPeerState(file)?.peers.length, 4);
  const fewer = more.slice(1);
  now += 1;
  assert.is(await w.write(fewer, true), false);
  assert.is(await w.write(fewer, false), true, 'settled: written at once');
  assert.is(readPeerState(file)?.peers.length, 3);
});

test('busy: fewer programmed (or skipped) than known, or fewer with a path than known', () => {
  const paths = [peer(1), peer(2)];
  assert.is(backendBusy({ peersKnown: 2, peersProgrammed: 2, paths }), false);
  assert.is(backendBusy({ peersKnown: 3, peersProgrammed: 2, peersSkipped: 1, paths: [...paths, peer(3, 'skipped')] }), false);
  assert.is(backendBusy({ peersKnown: 3, peersProgrammed: 2, paths }), true, 'one not programmed');
  assert.is(backendBusy({ peersKnown: 3, peersProgrammed: 3, paths }), true, 'VXLAN mid-batch: counted programmed, no path yet');
  assert.is(backendBusy({ peersKnown: 3, peersProgrammed: 3 }), false, 'a backend without paths (udp, wireguard)');
});

test.run();
