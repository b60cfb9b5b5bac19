// --ip-masq: NAT rules in weft's own chain, in the style of flannel's:
// overlay-to-overlay traffic is never masqueraded; overlay-to-outside is.
// The chain is rewritten as a whole with iptables-restore --noflush, so a
// restart converges on the same rules instead of piling up duplicates.
import { execFile } from 'node:child_process';

export const MASQ_CHAIN = 'WEFT-POSTRTG';
const COMMENT = ['-m', 'comment', '--comment', '"weft masq"'];

function run(cmd: string, args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: 15_000 }, (err, stdout, stderr) => {
      if (err && typeof (err as NodeJS.ErrnoException).code === 'string') {
        reject(new Error(`cannot run ${cmd}: ${err.message}`));
        return;
      }
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** The rules of the chain, in order, for cluster network `network` and this host's `subnet`. */
export function masqRules(network: string, subnet: string): string[][] {
  return [
    ['-s', network, '-d', network, ...COMMENT, '-j', 'RETURN'],
    ['!', '-s', network, '-d', subnet, ...COMMENT, '-j', 'RETURN'],
    ['-s', network, '!', '-d', '224.0.0.0/4', ...COMMENT, '-j', 'MASQUERADE', '--random-fully'],
    ['!', '-s', network, '-d', network, ...COMMENT, '-j', 'MASQUERADE', '--random-fully'],
  ];
}

export function masqRestoreInput(network: string, subnet: string): string {
  const lines = ['*nat', `:${MASQ_CHAIN} - [0:0]`, `-F ${MASQ_CHAIN}`];
  for (const r of masqRules(network, subnet)) lines.push(`-A ${MASQ_CHAIN} ${r.join(' ')}`);
  lines.push('COMMIT', '');
  return lines.join('\n');
}

const JUMP = ['-t', 'nat', '-m', 'comment', '--comment', 'weft masq', '-j', MASQ_CHAIN];

/** Installs (or rewrites) the chain and the POSTROUTING jump to it. Idempotent. */
export async function ensureMasquerade(network: string, subnet: string): Promise<void> {
  const r = await run('iptables-restore', ['--noflush', '-w', '5'], masqRestoreInput(network, subnet));
  if (r.code !== 0) throw new Error(`iptables-restore of ${MASQ_CHAIN} failed: ${r.stderr.trim() || `exit ${r.code}`}`);
  const check = await run('iptables', ['-w', '5', '-C', 'POSTROUTING', ...JUMP]);
  if (check.code === 0) return;
  const ins = await run('iptables', ['-w', '5', '-I', 'POSTROUTING', '1', ...JUMP]);
  if (ins.code !== 0) throw new Error(`iptables -I POSTROUTING -j ${MASQ_CHAIN} failed: ${ins.stderr.trim()}`);
}

/** Removes the jump and the chain (used when --ip-masq is turned off). Missing pieces are fine. */
export async function removeMasquerade(): Promise<void> {
  for (;;) {
    const del = await run('iptables', ['-w', '5', '-D', 'POSTROUTING', ...JUMP]);
    if (del.code !== 0) break;
  }
  await run('iptables', ['-w', '5', '-t', 'nat', '-F', MASQ_CHAIN]);
  await run('iptables', ['-w', '5', '-t', 'nat', '-X', MASQ_CHAIN]);
}
