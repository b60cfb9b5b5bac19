// The lab's container runtimes: `weft lab --runtime docker|podman` and the
// runtime integration tests get one from here.
import { existsSync, openSync, readSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab } from '../lab.js';
import { CNI_PATH } from '../cni.js';
import { DockerRuntime } from './docker.js';
import { BUSYBOX } from './image.js';
import { PodmanRuntime } from './podman.js';
import type { ContainerRuntime, RuntimeKind } from './runtime.js';

export { DockerRuntime } from './docker.js';
export { PodmanRuntime } from './podman.js';
export { ContainerRuntime, LAB_DNS, type RuntimeContainer, type RuntimeKind } from './runtime.js';

export function createRuntime(lab: Lab, kind: RuntimeKind): ContainerRuntime {
  return kind === 'docker' ? new DockerRuntime(lab) : new PodmanRuntime(lab);
}

/** A dynamically linked busybox (Debian's `busybox`) cannot run in the image, which has no libc. */
function isStaticBusybox(path: string): boolean {
  if (!existsSync(path)) return false;
  const buf = Buffer.alloc(8192);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, buf, 0, buf.length, 0);
  } finally {
    closeSync(fd);
  }
  return !buf.includes('ld-linux');
}

/** What the runtime needs that this machine lacks, each with how to get it. */
export function runtimePreflight(kind: RuntimeKind, which: (tool: string) => string | undefined): Array<{ what: string; how: string }> {
  const out: Array<{ what: string; how: string }> = [];
  const setup = 'bash scripts/setup.sh --runtimes';
  if (kind === 'docker') {
    for (const t of ['dockerd', 'docker']) if (!which(t)) out.push({ what: `${t} (not on PATH)`, how: `apt-get install docker.io, or ${setup}` });
  } else {
    if (!which('podman')) out.push({ what: 'podman (not on PATH)', how: `apt-get install podman, or ${setup}` });
    if (!existsSync(join(CNI_PATH, 'portmap'))) out.push({ what: `CNI plugin ${join(CNI_PATH, 'portmap')}`, how: 'apt-get install containernetworking-plugins' });
  }
  for (const t of ['nsenter', 'unshare', 'tar']) if (!which(t)) out.push({ what: `${t} (not on PATH)`, how: t === 'tar' ? 'apt-get install tar' : 'apt-get install util-linux' });
  if (!isStaticBusybox(BUSYBOX)) out.push({ what: `a static ${BUSYBOX} (the containers' image is built from it)`, how: `apt-get install busybox-static, or ${setup}` });
  return out;
}
