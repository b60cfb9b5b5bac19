import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkFdName, FdStore, parseListenFds, type FdStoreSocket } from '../../../host/fd-store.js';

function fakeSocket(o: { open?: (fd: number) => boolean; barrier?: boolean } = {}) {
  const sent: Array<{ path: string; message: string; fds: number[] }> = [];
  const closed: number[] = [];
  const sock: FdStoreSocket = {
    send: (path, message, fds) => { sent.push({ path, message, fds: [...(fds ?? [])] }); },
    barrier: (path) => { sent.push({ path, message: 'BARRIER=1', fds: [] }); return o.barrier ?? true; },
    keep: (fd) => { if (o.open && !o.open(fd)) throw new Error('EBADF'); },
    close: (fd) => { closed.push(fd); },
  };
  return { sock, sent, closed };
}

test('LISTEN_FDS: fds from 3 by name, only for our own pid; a missing name gets a placeholder', () => {
  const env = { LISTEN_PID: '42', LISTEN_FDS: '3', LISTEN_FDNAMES: 'a/tun/0:a/udp/0' };
  assert.equal([...parseListenFds(env, 42)], [['a/tun/0', 3], ['a/udp/0', 4], ['unknown-2', 5]]);
  assert.is(parseListenFds(env, 43).size, 0, 'another process\'s fds');
  assert.is(parseListenFds({ LISTEN_PID: '42', LISTEN_FDS: 'x' }, 42).size, 0);
  assert.is(parseListenFds({}, 42).size, 0);
});

test('FDNAME: printable ASCII without ":" (the LISTEN_FDNAMES separator), 1-255 characters', () => {
  assert.is(checkFdName('weft-udp/weft-tun/udp/0'), 'weft-udp/weft-tun/udp/0');
  for (const bad of ['', 'a:b', 'a b', 'x'.repeat(256), 'é']) assert.throws(() => checkFdName(bad), /fd store name/);
});

test('store: one FDSTORE=1 message per fd, FDPOLL=0, its own FDNAME, the fd attached', () => {
  const { sock, sent } = fakeSocket();
  const s = new FdStore('/run/systemd/notify', new Map(), sock);
  s.store([['weft-udp/t/tun/0', 7], ['weft-udp/t/udp/0', 9]]);
  assert.equal(sent, [
    { path: '/run/systemd/notify', message: 'FDSTORE=1\nFDPOLL=0\nFDNAME=weft-udp/t/tun/0', fds: [7] },
    { path: '/run/systemd/notify', message: 'FDSTORE=1\nFDPOLL=0\nFDNAME=weft-udp/t/udp/0', fds: [9] },
  ]);
});

test('passed fds: looked at, taken once; remove() asks systemd to drop every held name of the prefix, closes what was passed and not taken, then waits for a barrier', () => {
  const { sock, sent, closed } = fakeSocket({ open: (fd) => fd !== 6 });
  const s = new FdStore('@notify', new Map([['p/tun/0', 3], ['p/udp/0', 4], ['other/0', 5], ['p/tun/1', 6]]), sock);
  assert.equal(s.passedNames('p/'), ['p/tun/0', 'p/udp/0'], 'fd 6 is not open: not passed');
  assert.is(s.passedFd('p/tun/0'), 3);
  assert.is(s.take('p/tun/0'), 3);
  assert.is(s.take('p/tun/0'), undefined, 'taken once');
  s.store([['p/udp/1', 11]]);
  sent.length = 0;
  assert.equal(s.remove('p/').sort(), ['p/tun/0', 'p/udp/0', 'p/udp/1']);
  assert.equal(sent.map((m) => m.message).sort(), ['BARRIER=1', 'FDSTOREREMOVE=1\nFDNAME=p/tun/0', 'FDSTOREREMOVE=1\nFDNAME=p/udp/0', 'FDSTOREREMOVE=1\nFDNAME=p/udp/1']);
  assert.is(sent.at(-1)!.message, 'BARRIER=1', 'the barrier last');
  assert.equal(closed, [4], 'the passed fd nobody took');
  assert.equal(s.passedNames(''), ['other/0']);
  sent.length = 0;
  assert.equal(s.remove('p/'), [], 'nothing held any more');
  assert.equal(sent, [], 'and nothing sent');
});

test('remove: a barrier systemd does not confirm is an error naming what was removed', () => {
  const { sock } = fakeSocket({ barrier: false });
  const s = new FdStore('@notify', new Map(), sock);
  s.store([['p/tun/0', 3]]);
  assert.throws(() => s.remove('p/'), /systemd did not confirm the removal of p\/tun\/0/);
});

test.run();
