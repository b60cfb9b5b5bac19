// The one flag system of weftd and every weft subcommand: a table of FlagDefs
// parsed from argv (--name=value, --name value, bare --name for booleans) with
// an optional environment fallback (PREFIX_NAME, the flag wins), one rule for
// booleans, and one help formatter. Every bad value is a UsageError naming
// the flag (or variable) and quoting the value: exit status 2.
import { UsageError } from './errors.js';

export { UsageError };

export type FlagKind = 'string' | 'bool' | 'int' | 'list';

export interface FlagDef {
  /** Without dashes: 'etcd-endpoints'. */
  readonly name: string;
  readonly kind: FlagKind;
  readonly help: string;
  /** Property of the parsed values; default: the name as written. */
  readonly key?: string;
  /** Default, validated like a given value; a bool without one is undefined when not given. */
  readonly def?: string | number | boolean;
  readonly min?: number;
  readonly max?: number;
  readonly choices?: readonly string[];
  /** Further validation of a string or list: a reason, or undefined when fine. */
  readonly check?: (v: string) => string | undefined;
  /** false: never read from the environment, even in a set with envPrefix. */
  readonly env?: boolean;
}

export interface FlagSet {
  /** 'weftd', 'weft leases': named in errors and help. */
  readonly command: string;
  /** The usage line; default `<command> [flags]`. */
  readonly usage?: string;
  /** A paragraph under the usage line. */
  readonly about?: string;
  readonly flags: readonly FlagDef[];
  /** Environment fallback for each flag: envPrefix + NAME ('WEFTD_' → WEFTD_ETCD_ENDPOINTS). */
  readonly envPrefix?: string;
  /** Accept arguments that are not flags (returned in order); otherwise they are an error. */
  readonly positional?: boolean;
  /** Lines after the flag list (what the command needs, exit statuses). */
  readonly footer?: string;
}

export interface ParsedFlags {
  readonly values: Readonly<Record<string, unknown>>;
  readonly positional: readonly string[];
  /** --help or -h was given. */
  readonly help: boolean;
  /** The arguments as given (for a report that says how it was made). */
  readonly argv: readonly string[];
}

const TRUE = ['true', '1', 'yes', ''];
const FALSE = ['false', '0', 'no'];

export const keyOf = (f: FlagDef): string => f.key ?? f.name;

export function envName(prefix: string, flag: string): string {
  return prefix + flag.toUpperCase().replace(/-/g, '_');
}

function envOf(set: FlagSet, f: FlagDef): string | undefined {
  return set.envPrefix !== undefined && f.env !== false ? envName(set.envPrefix, f.name) : undefined;
}

function choicesText(c: readonly string[]): string {
  return c.length === 2 ? `${c[0]} or ${c[1]}` : `one of ${c.join(', ')}`;
}

/** Converts one raw value; `source` names it in errors ('--hosts', 'WEFTD_IP_MASQ=', 'default of --x'). */
export function convertFlag(f: FlagDef, raw: string, source: string): unknown {
  const bad = (why: string) => new UsageError(`invalid ${source} ${JSON.stringify(raw)}: ${why}`);
  switch (f.kind) {
    case 'bool':
      if (TRUE.includes(raw)) return true;
      if (FALSE.includes(raw)) return false;
      throw bad('must be true or false');
    case 'int': {
      if (!/^-?\d+$/.test(raw)) throw bad('must be a whole number');
      const n = Number(raw);
      if (f.min !== undefined && n < f.min) throw bad(`must be at least ${f.min}`);
      if (f.max !== undefined && n > f.max) throw bad(`must be at most ${f.max}`);
      return n;
    }
    case 'list':
    case 'string': {
      if (raw === '') throw bad('must not be empty');
      if (f.choices && !f.choices.includes(raw)) throw bad(`must be ${choicesText(f.choices)}`);
      const why = f.check?.(raw);
      if (why) throw bad(why);
      return f.kind === 'list' ? Object.freeze(raw.split(',').map((s) => s.trim()).filter(Boolean)) : raw;
    }
  }
}

/** Parses argv (without node and script) and, for a set with envPrefix, env. Throws UsageError. */
export function parseFlags(set: FlagSet, argv: readonly string[], env: Readonly<Record<string, string | undefined>> = {}): ParsedFlags {
  const byName = new Map(set.flags.map((f) => [f.name, f]));
  const values: Record<string, unknown> = {};
  for (const f of set.flags) {
    const name = envOf(set, f);
    const fromEnv = name === undefined ? undefined : env[name];
    if (fromEnv !== undefined) values[keyOf(f)] = convertFlag(f, fromEnv, `${name}=`);
    else if (f.def !== undefined) values[keyOf(f)] = convertFlag(f, String(f.def), `default of --${f.name}`);
  }
  const positional: string[] = [];
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-h' || arg === '--help') {
      help = true;
      continue;
    }
    if (!arg.startsWith('--')) {
      if (!set.positional) throw new UsageError(`unexpected argument ${JSON.stringify(arg)} (${set.command} takes only --flags; see --help)`);
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const f = byName.get(name);
    if (!f) throw new UsageError(`unknown flag --${name} (see ${set.command} --help)`);
    let raw: string;
    if (eq >= 0) raw = arg.slice(eq + 1);
    else if (f.kind === 'bool') raw = 'true';
    else {
      const next = argv[++i];
      if (next === undefined) throw new UsageError(`flag --${name} needs a value`);
      raw = next;
    }
    values[keyOf(f)] = convertFlag(f, raw, `--${name}`);
  }
  return { values, positional, help, argv: [...argv] };
}

/** The help text of a set: usage, about, one line per flag (its default, choices and variable), footer. */
export function formatHelp(set: FlagSet): string {
  const heads = set.flags.map((f) => `  --${f.name}${f.kind === 'bool' ? '' : f.kind === 'int' ? ' N' : ' VALUE'}`);
  const width = Math.min(40, Math.max(...heads.map((h) => h.length), 10) + 2);
  const lines = [`Usage: ${set.usage ?? `${set.command} [flags]`}`, ''];
  if (set.about) lines.push(set.about, '');
  lines.push(set.envPrefix !== undefined ? 'Flags (each also from the environment variable shown):' : 'Flags:');
  set.flags.forEach((f, i) => {
    const extra = [
      f.choices && f.kind !== 'bool' ? `: ${f.choices.join(', ')}` : '',
      f.def !== undefined && f.kind !== 'bool' ? ` (default ${f.def})` : '',
    ].join('');
    const head = heads[i]!;
    lines.push(head.length < width ? head.padEnd(width) + f.help + extra : `${head}\n${''.padEnd(width)}${f.help}${extra}`);
    const env = envOf(set, f);
    if (env) lines.push(''.padEnd(width) + `env ${env}`);
  });
  lines.push('  -h, --help'.padEnd(width) + 'print this help and exit');
  if (set.footer) lines.push('', set.footer);
  return lines.join('\n');
}

/** check of a flag naming a network interface (--iface, --bridge, device names). */
export const ifaceName = (v: string): string | undefined =>
  /^[^\s/:]{1,15}$/.test(v) ? undefined : 'must be an interface name of 1 to 15 characters without "/", ":" or spaces';

/** A command of a multi-command tool (weft leases, weft lab, ...): its flags and what it does with them. */
export interface Command {
  readonly flags: FlagSet;
  /** Rewrites argv before parsing (e.g. a script's short options into the long flags). */
  readonly rewriteArgs?: (argv: readonly string[]) => string[];
  /** Runs with the parsed flags (never called for --help); resolves to the exit status. */
  run(p: ParsedFlags): Promise<number>;
}

/** Parses argv for a command and runs it, or prints its help. */
export async function runCommand(c: Command, argv: readonly string[], env: Readonly<Record<string, string | undefined>> = {}, out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  const p = parseFlags(c.flags, c.rewriteArgs ? c.rewriteArgs(argv) : argv, env);
  if (p.help) {
    out(formatHelp(c.flags) + '\n');
    return 0;
  }
  return c.run(p);
}
