// What a process has cost so far, read from /proc: CPU seconds (utime+stime of
// every thread, so the native forwarder's threads count) and resident memory.
import { readdirSync, readFileSync } from 'node:fs';

/** Kernel clock ticks per second (USER_HZ): 100 on every Linux ABI Node runs on. */
const USER_HZ = 100;

/** utime+stime of pid in seconds; undefined when the process is gone. */
export function cpuSeconds(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // comm (field 2) may hold spaces and parentheses: split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime is field 14, stime field 15.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`/proc/${pid}/stat: cannot read utime/stime from ${JSON.stringify(stat.slice(0, 200))}`);
  return (utime + stime) / USER_HZ;
}

/** Sum of cpuSeconds over pids; a pid that is gone counts as an error, since the figure would be wrong. */
export function totalCpuSeconds(pids: readonly number[]): number {
  let sum = 0;
  for (const pid of pids) {
    const s = cpuSeconds(pid);
    if (s === undefined) throw new Error(`process ${pid} is gone; its CPU time cannot be measured`);
    sum += s;
  }
  return sum;
}

/** VmRSS of pid in bytes; undefined when the process is gone. */
export function rssBytes(pid: number): number | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  return m ? Number(m[1]) * 1024 : undefined;
}

/** Every descendant of pid (children of each of its threads, recursively), e.g. the wireguard-go a weftd runs. */
export function descendants(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    let children = '';
    try {
      children = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8');
    } catch {
      continue;
    }
    for (const c of children.trim().split(/\s+/).filter(Boolean).map(Number)) out.push(c, ...descendants(c));
  }
  return out;
}
