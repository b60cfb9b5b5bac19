// weft's own iptables chains (the masquerade chain in nat, the forward chain
// in filter), handled one way: the chain is rewritten as a whole with
// iptables-restore --noflush (declare, flush and append in one COMMIT, so no
// reader ever sees it half-written), then the jump to it from the built-in
// chain is added if missing. A restart converges on the same rules instead
// of piling up duplicates. Family 6 runs ip6tables (dual stack, later).
import { execFile } from 'node:child_process';

export type IptablesFamily = 4 | 6;

export interface Chain {
  readonly family: IptablesFamily;
  readonly table: 'nat' | 'filter';
  /** weft's chain, e.g. WEFT-FWD */
  readonly name: string;
  /** The built-in chain that jumps to it. */
  readonly hook: 'POSTROUTING' | 'FORWARD';
  /** first: inserted at the top of the hook; last: appended (after Docker's own rules). */
  readonly position: 'first' | 'last';
  /** The comment on the jump and every rule. */
  readonly comment: string;
  /** The rules as iptables arguments, without the chain and without the comment match. */
  readonly rules: readonly (readonly string[])[];
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runTool(cmd: string, args: readonly string[], input?: string): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, [...args], { timeout: 15_000 }, (err, stdout, stderr) => {
      if (err && typeof (err as NodeJS.ErrnoException).code === 'string') {
        reject(new Error(`cannot run ${cmd}: ${err.message}`));
        return;
      }
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

const tool = (f: IptablesFamily) => (f === 6 ? 'ip6tables' : 'iptables');
const commentArgs = (c: Chain) => ['-m', 'comment', '--comment', c.comment];
/** One rule's arguments as exec'd (no quoting). */
const ruleArgs = (c: Chain, r: readonly string[]) => [...r.slice(0, r.indexOf('-j')), ...commentArgs(c), ...r.slice(r.indexOf('-j'))];
const jumpArgs = (c: Chain) => [...commentArgs(c), '-j', c.name];

/** An argument as iptables-restore reads it (double-quoted when it holds a space). */
const restoreArg = (a: string) => (/\s/.test(a) ? `"${a}"` : a);

/** The restore input that replaces the chain's rules in one transaction. */
export function chainRestoreInput(c: Chain): string {
  const lines = [`*${c.table}`, `:${c.name} - [0:0]`, `-F ${c.name}`];
  for (const r of c.rules) lines.push(`-A ${c.name} ${ruleArgs(c, r).map(restoreArg).join(' ')}`);
  lines.push('COMMIT', '');
  return lines.join('\n');
}

/** Installs (or rewrites) the chain and the jump to it. Idempotent. */
export async function ensureChain(c: Chain, run = runTool): Promise<void> {
  const t = tool(c.family);
  const r = await run(`${t}-restore`, ['--noflush', '-w', '5'], chainRestoreInput(c));
  if (r.code !== 0) throw new Error(`${t}-restore of ${c.name} failed: ${r.stderr.trim() || `exit ${r.code}`}`);
  const check = await run(t, ['-w', '5', '-t', c.table, '-C', c.hook, ...jumpArgs(c)]);
  if (check.code === 0) return;
  const add = c.position === 'first' ? ['-I', c.hook, '1'] : ['-A', c.hook];
  const ins = await run(t, ['-w', '5', '-t', c.table, ...add, ...jumpArgs(c)]);
  if (ins.code !== 0) throw new Error(`${t} -t ${c.table} ${add.join(' ')} -j ${c.name} failed: ${ins.stderr.trim() || `exit ${ins.code}`}`);
}

/**
 * What of the chain is not in place (the jump, a rule, a stray extra rule),
 * or [] when all is. Checks with -C, as flannel's resync does.
 */
export async function chainProblems(c: Chain, run = runTool): Promise<string[]> {
  const t = tool(c.family);
  const problems: string[] = [];
  const jump = await run(t, ['-w', '5', '-t', c.table, '-C', c.hook, ...jumpArgs(c)]);
  if (jump.code !== 0) problems.push(`no jump from ${c.hook} to ${c.name}`);
  const listed = await run(t, ['-w', '5', '-t', c.table, '-S', c.name]);
  if (listed.code !== 0) {
    problems.push(`chain ${c.name} is missing`);
    return problems;
  }
  for (const r of c.rules) {
    const has = await run(t, ['-w', '5', '-t', c.table, '-C', c.name, ...ruleArgs(c, r)]);
    if (has.code !== 0) problems.push(`rule missing: -A ${c.name} ${r.join(' ')}`);
  }
  const count = listed.stdout.split('\n').filter((l) => l.startsWith(`-A ${c.name} `)).length;
  if (count > c.rules.length) problems.push(`${c.name} holds ${count} rules, not ${c.rules.length}`);
  return problems;
}

/** Removes the jump (every copy) and the chain. Missing pieces are fine. */
export async function removeChain(c: Pick<Chain, 'family' | 'table' | 'name' | 'hook' | 'comment'>, run = runTool): Promise<void> {
  const t = tool(c.family);
  const jump = ['-m', 'comment', '--comment', c.comment, '-j', c.name];
  for (let i = 0; i < 100; i++) {
    const del = await run(t, ['-w', '5', '-t', c.table, '-D', c.hook, ...jump]);
    if (del.code !== 0) break;
  }
  await run(t, ['-w', '5', '-t', c.table, '-F', c.name]);
  await run(t, ['-w', '5', '-t', c.table, '-X', c.name]);
}
