// Kernel settings under /proc/sys. Paths resolve in the network namespace of
// the process, which is the host weftd serves.
import { readFileSync, writeFileSync } from 'node:fs';

export function readSysctl(path: string): string {
  return readFileSync(`/proc/sys/${path}`, 'utf8').trim();
}

/** Sets a sysctl if it differs; returns true when it changed. */
export function ensureSysctl(path: string, value: string): boolean {
  if (readSysctl(path) === value) return false;
  try {
    writeFileSync(`/proc/sys/${path}`, value);
  } catch (e) {
    throw new Error(`cannot set ${path.replace(/\//g, '.')} to ${value}: ${(e as Error).message}`);
  }
  return true;
}
