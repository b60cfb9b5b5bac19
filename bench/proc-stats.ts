// What a process has cost so far, read from /proc: CPU seconds (utime+stime of
// every thread, so the native forwarder's threads count) and resident memory.
import { readdirSync, readFileSync } from 'node:fs';

/** Kernel clock ticks per second (USER_HZ): 100 on every Linux ABI Node runs on. */
const USER_HZ = 100;

/** A /proc file's text, undefined when it cannot be read (the process is gone). */
function readProc(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** utime+stime of pid in seconds; undefined when the process is gone. */
export function cpuSeconds(pid: number): number | undefined {
  const t = cpuTimes(pid);
  return t && t.user + t.system;
}

/** utime and stime of pid (every thread) in seconds; undefined when the process is gone. */
export function cpuTimes(pid: number): { user: number; system: number } | undefined {
  const stat = readProc(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  // comm (field 2) may hold spaces and parentheses: split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime is field 14, stime field 15.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`/proc/${pid}/stat: cannot read utime/stime from ${JSON.stringify(stat.slice(0, 200))}`);
  return { user: utime / USER_HZ, system: stime / USER_HZ };
}

/**
 * Seconds pid's main thread (the event loop's) has spent runnable but waiting for a CPU
 * (/proc/<pid>/schedstat: time on a CPU, time waiting on a run queue, timeslices; the
 * thread-group leader's line); undefined when the process is gone or the kernel keeps no
 * schedstats. Time the event loop could not run through no fault of its own.
 */
export function runQueueWaitSeconds(pid: number): number | undefined {
  const line = readProc(`/proc/${pid}/schedstat`);
  if (line === undefined) return undefined;
  const wait = Number(line.trim().split(/\s+/)[1]);
  if (!Number.isFinite(wait)) throw new Error(`/proc/${pid}/schedstat: cannot read the run-queue wait from ${JSON.stringify(line.slice(0, 100))}`);
  return wait / 1e9;
}

/**
 * CPU seconds the whole machine was busy so far, all cores (the "cpu" line of /proc/stat:
 * user, nice, system, irq, softirq and steal; idle and iowait left out): what a data path
 * costs including the kernel's share (softirq is where VXLAN and the network stack run).
 */
export function machineBusySeconds(stat = readFileSync('/proc/stat', 'utf8')): number {
  const line = stat.split('\n').find((l) => l.startsWith('cpu '));
  const f = line?.trim().split(/\s+/).slice(1).map(Number) ?? [];
  if (f.length < 8 || f.some((x) => !Number.isFinite(x))) throw new Error(`/proc/stat: no readable "cpu" line in ${JSON.stringify(stat.slice(0, 200))}`);
  const [user, nice, system, , , irq, softirq, steal] = f as [number, number, number, number, number, number, number, number];
  return (user + nice + system + irq + softirq + steal) / USER_HZ;
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
  const status = readProc(`/proc/${pid}/status`);
  const m = status === undefined ? null : /^VmRSS:\s+(\d+) kB$/m.exec(status);
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
    const children = readProc(`/proc/${pid}/task/${tid}/children`);
    if (children === undefined) continue;
    for (const c of children.trim().split(/\s+/).filter(Boolean).map(Number)) out.push(c, ...descendants(c));
  }
  return out;
}

/** The TcpExt counters of /proc/net/netstat that say where a TCP receiver dropped segments. */
export const TCP_DROP_COUNTERS = ['TCPBacklogDrop', 'TCPRcvQDrop', 'TCPOFODrop', 'PruneCalled', 'TCPZeroWindowDrop'] as const;
export type TcpDrops = Record<(typeof TCP_DROP_COUNTERS)[number], number>;

/** Those counters from the text of /proc/net/netstat (a "TcpExt:" names line, then a values line); absent ones are 0. */
export function parseTcpDrops(netstat: string): TcpDrops {
  const lines = netstat.split('\n').filter((l) => l.startsWith('TcpExt:'));
  const names = (lines[0] ?? '').split(/\s+/).slice(1);
  const values = (lines[1] ?? '').split(/\s+/).slice(1).map(Number);
  const out = {} as TcpDrops;
  for (const k of TCP_DROP_COUNTERS) {
    const v = values[names.indexOf(k)];
    out[k] = names.includes(k) && Number.isFinite(v) ? v! : 0;
  }
  return out;
}

/** Udp RcvbufErrors of /proc/net/snmp (a "Udp:" names line, then a values line): datagrams a full receive socket dropped; 0 when absent. */
export function parseUdpRcvbufErrors(snmp: string): number {
  const lines = snmp.split('\n').filter((l) => l.startsWith('Udp:'));
  const names = (lines[0] ?? '').split(/\s+/);
  const v = Number((lines[1] ?? '').split(/\s+/)[names.indexOf('RcvbufErrors')]);
  return names.includes('RcvbufErrors') && Number.isFinite(v) ? v : 0;
}

/** after - before, counter by counter. */
export function tcpDropsDelta(before: TcpDrops, after: TcpDrops): TcpDrops {
  const out = {} as TcpDrops;
  for (const k of TCP_DROP_COUNTERS) out[k] = after[k] - before[k];
  return out;
}
