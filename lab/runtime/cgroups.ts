// The cgroups container runtimes make for the lab's containers: each lab host
// gives its runtime a relative --cgroup-parent named weft-lab-<id>-h<i>, which
// lands in every hierarchy either at its root or under the daemon's own
// cgroup (dockerd: relative to its own; podman: relative to init's). Finding
// them, and removing them with whatever still runs inside, is all here;
// synchronous, so the exit hook can use it too.
import { readdirSync, readFileSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

interface Hierarchy { mount: string; controllers: string[]; v2: boolean }

/** cgroup mounts from /proc/self/mountinfo: where each hierarchy is and which controllers it has. */
function hierarchies(): Hierarchy[] {
  const out: Hierarchy[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!pre || !post) continue;
    const [fstype, , superOpts] = post.split(' ');
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    const mount = pre.split(' ')[4]!;
    const controllers = fstype === 'cgroup2' ? [] : (superOpts ?? '').split(',').filter((o) => o !== 'rw' && o !== 'ro' && !['relatime', 'noexec', 'nosuid', 'nodev', 'clone_children'].includes(o));
    out.push({ mount, controllers, v2: fstype === 'cgroup2' });
  }
  return out;
}

/** A process's cgroup path in each hierarchy (from /proc/<pid>/cgroup). */
function cgroupPaths(pid: number | 'self', hs: Hierarchy[]): Map<string, string> {
  const m = new Map<string, string>();
  let text = '';
  try { text = readFileSync(`/proc/${pid}/cgroup`, 'utf8'); } catch { return m; }
  for (const line of text.split('\n').filter(Boolean)) {
    const [id, ctrl, path] = [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1, line.lastIndexOf(':')), line.slice(line.lastIndexOf(':') + 1)];
    const h = id === '0' && ctrl === '' ? hs.find((x) => x.v2) : hs.find((x) => !x.v2 && ctrl.split(',').every((c) => x.controllers.includes(c)));
    if (h) m.set(h.mount, path);
  }
  return m;
}

/**
 * Every existing cgroup directory whose name starts with `prefix`, looked for
 * at each hierarchy's root and under the cgroups of `pids` (and this process).
 */
export function findLabCgroups(prefix: string, pids: readonly number[] = []): string[] {
  const hs = hierarchies();
  const bases = [cgroupPaths('self', hs), ...pids.map((p) => cgroupPaths(p, hs))];
  const found = new Set<string>();
  for (const h of hs) {
    const paths = new Set(['/', ...bases.map((b) => b.get(h.mount)).filter((x): x is string => !!x)]);
    for (const p of paths) {
      const dir = join(h.mount, p);
      let names: string[] = [];
      try { names = readdirSync(dir); } catch { continue; }
      for (const n of names) if (n.startsWith(prefix) && isDir(join(dir, n))) found.add(join(dir, n));
    }
  }
  return [...found].sort();
}

function isDir(p: string): boolean {
  try { return statSync(p).isDirectory(); } catch { return false; }
}

function subdirsDeepestFirst(dir: string): string[] {
  const out: string[] = [];
  let entries: string[] = [];
  try { entries = readdirSync(dir); } catch { return out; }
  for (const n of entries) {
    const p = join(dir, n);
    if (isDir(p)) out.push(...subdirsDeepestFirst(p));
  }
  out.push(dir);
  return out;
}

function killAll(dir: string): number {
  let n = 0;
  let procs = '';
  try { procs = readFileSync(join(dir, 'cgroup.procs'), 'utf8'); } catch { return 0; }
  for (const pid of procs.split('\n').filter(Boolean)) {
    try { process.kill(Number(pid), 'SIGKILL'); n++; } catch { /* gone */ }
  }
  return n;
}

const pause = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/**
 * Kills every process left in the lab's cgroups (containers whose runtime
 * was killed) and removes the directories, deepest first. Only directories
 * named with `prefix` (and what is below them) are touched. Throws naming
 * what could not be removed after ~3 s.
 */
export function removeLabCgroups(prefix: string, known: readonly string[] = []): void {
  const roots = [...new Set([...known.filter((d) => d.split('/').some((part) => part.startsWith(prefix))), ...findLabCgroups(prefix)])];
  if (!roots.length) return;
  const left = new Set<string>();
  for (let attempt = 0; attempt < 30; attempt++) {
    left.clear();
    for (const root of roots) {
      for (const d of subdirsDeepestFirst(root)) {
        killAll(d);
        try {
          rmdirSync(d);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') left.add(d);
        }
      }
    }
    if (!left.size) return;
    pause(100);
  }
  throw new Error(`cgroups left behind: ${[...left].join(', ')}`);
}
