// The lab's container image, built offline: Debian's static busybox in an
// otherwise empty root filesystem, as a tar that `docker import` and
// `podman import` take. Its httpd serves /www (a CGI at /cgi-bin/remote
// answers with the client's address as the server sees it: the test of
// "no masquerading inside the overlay"), and ping, wget, sha256sum, ip are
// busybox applets.
import { chmodSync, existsSync, mkdirSync, symlinkSync, writeFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { execOk } from '../netns.js';

export const BUSYBOX = '/bin/busybox';
export const IMAGE = 'weft-lab/busybox:latest';
/** The containers' main process: the web server on port 8080. */
export const HTTP_PORT = 8080;
// IPv4 only: on a dual-stack socket the CGI would see ::ffff:-mapped addresses.
export const CONTAINER_CMD = ['httpd', '-f', '-p', `0.0.0.0:${HTTP_PORT}`, '-h', '/www'];

const REMOTE_CGI = '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\n%s\\n" "$REMOTE_ADDR"\n';

const building = new Map<string, Promise<string>>();

/** Builds <dir>/rootfs.tar once (hosts starting at the same time share the build); returns its path. */
export function buildImageTar(dir: string): Promise<string> {
  let p = building.get(dir);
  if (!p) {
    p = build(dir);
    building.set(dir, p);
    p.catch(() => building.delete(dir));
  }
  return p;
}

async function build(dir: string): Promise<string> {
  const tar = join(dir, 'rootfs.tar');
  if (existsSync(tar)) return tar;
  const root = join(dir, 'rootfs');
  for (const d of ['bin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'www/cgi-bin']) mkdirSync(join(root, d), { recursive: true });
  chmodSync(join(root, 'tmp'), 0o1777);
  copyFileSync(BUSYBOX, join(root, 'bin/busybox'));
  chmodSync(join(root, 'bin/busybox'), 0o755);
  const applets = (await execOk(BUSYBOX, ['--list'])).split('\n').filter((a) => a && a !== 'busybox');
  for (const a of applets) symlinkSync('busybox', join(root, 'bin', a));
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/:/bin/sh\n');
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\n');
  writeFileSync(join(root, 'www/index.html'), 'weft lab\n');
  writeFileSync(join(root, 'www/cgi-bin/remote'), REMOTE_CGI, { mode: 0o755 });
  await execOk('tar', ['-C', root, '--numeric-owner', '--owner=0', '--group=0', '-cf', tar, '.']);
  return tar;
}

/** The import flags both CLIs take: a PATH and a default command. */
export const IMPORT_CHANGES = ['-c', 'ENV PATH=/bin', '-c', `CMD ["/bin/sh"]`];
