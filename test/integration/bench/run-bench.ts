// Running `weft bench` as a child process for the bench's integration tests: its
// exit code and output, every namespace it made listed in a registry file of its
// own (lab/netns.ts registerNetns), and a check that all of them are gone.
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { listNetns } from '../../../lab/netns.js';

const WEFT = fileURLToPath(new URL('../../../cmd/weft.js', import.meta.url));

export interface BenchRun { code: number | null; stdout: string; stderr: string }

/** `weft bench <args>`, SIGTERM after timeoutMs; the namespaces it makes are listed in `registry`. */
export function runBench(args: readonly string[], registry: string, timeoutMs: number): Promise<BenchRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [WEFT, 'bench', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, WEFT_NETNS_REGISTRY: registry },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

/** Hands what the bench made on to the test runner's safety net (its own WEFT_NETNS_REGISTRY) before the registry goes. */
export function handOnRegistry(registry: string): void {
  if (process.env.WEFT_NETNS_REGISTRY && existsSync(registry)) appendFileSync(process.env.WEFT_NETNS_REGISTRY, readFileSync(registry, 'utf8'));
}

/** The namespaces listed in the registry that still exist (other runs' labs are not ours to judge), and how many it listed. */
export async function leftNamespaces(registry: string): Promise<{ made: number; left: string[] }> {
  const made = readFileSync(registry, 'utf8').split('\n').filter(Boolean);
  const now = new Set(await listNetns());
  return { made: made.length, left: made.filter((n) => now.has(n)) };
}
