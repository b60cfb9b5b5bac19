// A stand-in for systemd's side of the notify protocol and its file
// descriptor store, for tests (lab namespaces have no systemd):
//   node dist/lab/fake-systemd.js <notify-socket-path> <cmd> [args...]
// runs <cmd> with NOTIFY_SOCKET and FDSTORE=64 set, receives its datagrams
// (SCM_RIGHTS), keeps what FDSTORE=1 hands it (one entry per file and name;
// a file it holds already is not added again, as systemd does), closes what
// FDSTOREREMOVE=1 names and the BARRIER=1 fd, and on SIGUSR2 kills <cmd> with
// SIGKILL and starts it again the way systemd does after a crash with
// Restart=: with the stored fds at 3.. and LISTEN_PID, LISTEN_FDS,
// LISTEN_FDNAMES. SIGTERM ends <cmd> and then itself. Each event is one JSON
// line on stdout: {"ev":"store"|"remove"|"barrier"|"ready"|"started"|"exited", ...}.
import { spawn, type ChildProcess } from 'node:child_process';
import { fstatSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { native } from '../native/index.js';

interface Entry { readonly name: string; readonly fd: number; readonly file: string }

const say = (ev: string, fields: Record<string, unknown> = {}) => process.stdout.write(`${JSON.stringify({ ev, at: Date.now(), ...fields })}\n`);

/**
 * What tells two stored files apart. systemd compares open files (kcmp, F_DUPFD_QUERY); the
 * inode stands in for that here, except for character devices: every queue of a multi-queue
 * TUN is its own open of /dev/net/tun, one inode for all of them, so each counts as new.
 */
function fileId(fd: number): string {
  const st = fstatSync(fd);
  return st.isCharacterDevice() ? `chr:${st.dev}:${st.ino}:fd${fd}` : `${st.dev}:${st.ino}`;
}

export function main(argv: readonly string[]): void {
  const [socketPath, cmd, ...args] = argv;
  if (!socketPath || !cmd) throw new Error('usage: fake-systemd <notify-socket-path> <cmd> [args...]');
  const n = native();
  const sock = n.sdNotifySocket.listen(socketPath);
  let store: Entry[] = [];
  let child: ChildProcess | undefined;
  let restarting = false;
  let stopping = false;

  const start = () => {
    const env: NodeJS.ProcessEnv = { ...process.env, NOTIFY_SOCKET: socketPath, FDSTORE: '64' };
    if (store.length) {
      env.LISTEN_FDS = String(store.length);
      env.LISTEN_FDNAMES = store.map((e) => e.name).join(':');
    }
    // LISTEN_PID must be the service's own pid: the shell's, which exec keeps.
    const wrapped = store.length ? ['-c', 'LISTEN_PID=$$ exec "$0" "$@"', cmd, ...args] : ['-c', 'exec "$0" "$@"', cmd, ...args];
    child = spawn('/bin/sh', wrapped, { env, stdio: ['ignore', 'inherit', 'inherit', ...store.map((e) => e.fd)] });
    say('started', { pid: child.pid, fds: store.map((e) => e.name) });
    child.on('exit', (code, signal) => {
      say('exited', { code, signal });
      child = undefined;
      if (stopping) process.exit(0);
      if (restarting) {
        restarting = false;
        start();
      }
    });
  };

  const handle = (message: string, fds: number[]) => {
    const kv = new Map(message.split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const));
    if (kv.get('BARRIER') === '1') {
      for (const fd of fds) n.close(fd);
      say('barrier');
      return;
    }
    if (kv.get('FDSTOREREMOVE') === '1') {
      const name = kv.get('FDNAME') ?? 'stored';
      for (const e of store.filter((x) => x.name === name)) n.close(e.fd);
      store = store.filter((x) => x.name !== name);
      say('remove', { name, held: store.map((e) => e.name) });
    } else if (kv.get('FDSTORE') === '1') {
      const name = kv.get('FDNAME') ?? 'stored';
      for (const fd of fds) {
        const file = fileId(fd);
        if (store.some((e) => e.file === file)) {
          n.close(fd);
          continue;
        }
        store.push({ name, fd, file });
      }
      say('store', { name, poll: kv.get('FDPOLL'), held: store.map((e) => e.name) });
      return;
    } else {
      for (const fd of fds) n.close(fd);
    }
    if (kv.get('READY') === '1') say('ready', { status: kv.get('STATUS') });
  };

  setInterval(() => {
    for (let m = n.sdNotifySocket.recv(sock, 0); m; m = n.sdNotifySocket.recv(sock, 0)) handle(m.message, m.fds);
  }, 2);
  process.on('SIGUSR2', () => {
    if (!child) return;
    restarting = true;
    child.kill('SIGKILL');
  });
  process.on('SIGTERM', () => {
    stopping = true;
    if (!child) process.exit(0);
    child.kill('SIGTERM');
  });
  start();
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main(process.argv.slice(2));
