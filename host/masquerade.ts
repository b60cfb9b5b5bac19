// --ip-masq: NAT rules in weft's own chain, in the style of flannel's:
// overlay-to-overlay traffic is never masqueraded; overlay-to-outside is.
// The chain is rewritten as a whole with iptables-restore --noflush, so a
// restart converges on the same rules instead of piling up duplicates.
// IPv4 with iptables; a dual-stack network's IPv6 the same with ip6tables
// (multicast ff00::/8 instead of 224.0.0.0/4), as flannel's masqIP6Rules.
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

export type MasqFamily = 4 | 6;
const TOOL: Record<MasqFamily, string> = { 4: 'iptables', 6: 'ip6tables' };
const MULTICAST: Record<MasqFamily, string> = { 4: '224.0.0.0/4', 6: 'ff00::/8' };

/** The rules of the chain, in order, for cluster network `network` and this host's `subnet`. */
export function masqRules(network: string, subnet: string, family: MasqFamily = 4): string[][] {
  return [
    ['-s', network, '-d', network, ...COMMENT, '-j', 'RETURN'],
    ['!', '-s', network, '-d', subnet, ...COMMENT, '-j', 'RETURN'],
    ['-s', network, '!', '-d', MULTICAST[family], ...COMMENT, '-j', 'MASQUERADE', '--random-fully'],
    ['!', '-s', network, '-d', network, ...COMMENT, '-j', 'MASQUERADE', '--random-fully'],
  ];
}

export function masqRestoreInput(network: string, subnet: string, family: MasqFamily = 4): string {
  const lines = ['*nat', `:${MASQ_CHAIN} - [0:0]`, `-F ${MASQ_CHAIN}`];
  for (const r of masqRules(network, subnet, family)) lines.push(`-A ${MASQ_CHAIN} ${r.join(' ')}`);
  lines.push('COMMIT', '');
  return lines.join('\n');
}

const JUMP = ['-t', 'nat', '-m', 'comment', '--comment', 'weft masq', '-j', MASQ_CHAIN];

/** Installs (or rewrites) the chain and the POSTROUTING jump to it. Idempotent. */
export async function ensureMasquerade(network: string, subnet: string, family: MasqFamily = 4): Promise<void> {
  const tool = TOOL[family];
  const r = await run(`${tool}-restore`, ['--noflush', '-w', '5'], masqRestoreInput(network, subnet, family));
  if (r.code !== 0) throw new Error(`${tool}-restore of ${MASQ_CHAIN} failed: ${r.stderr.trim() || `exit ${r.code}`}`);
  const check = await run(tool, ['-w', '5', '-C', 'POSTROUTING', ...JUMP]);
  if (check.code === 0) return;
  const ins = await run(tool, ['-w', '5', '-I', 'POSTROUTING', '1', ...JUMP]);
  if (ins.code !== 0) throw new Error(`${tool} -I POSTROUTING -j ${MASQ_CHAIN} failed: ${ins.stderr.trim()}`);
}

/** Removes the jump and the chain (used when --ip-masq is turned off). Missing pieces are fine. */
export async function removeMasquerade(family: MasqFamily = 4): Promise<void> {
  const tool = TOOL[family];
  for (;;) {
    const del = await run(tool, ['-w', '5', '-D', 'POSTROUTING', ...JUMP]);
    if (del.code !== 0) break;
  }
  await run(tool, ['-w', '5', '-t', 'nat', '-F', MASQ_CHAIN]);
  await run(tool, ['-w', '5', '-t', 'nat', '-X', MASQ_CHAIN]);
}
