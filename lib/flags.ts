// Flag parsing for the weft CLI's subcommands: --name value, --name=value,
// bare booleans; every bad value is named in a CliUsageError (exit 2).
export class CliUsageError extends Error {
  readonly code = 'EUSAGE';
}

export interface CliFlag {
  readonly kind: 'string' | 'int' | 'bool';
  readonly def?: string | number | boolean;
  readonly help: string;
  readonly min?: number;
  readonly max?: number;
  readonly choices?: readonly string[];
}

export interface CliSpec {
  readonly usage: string;
  readonly flags: Readonly<Record<string, CliFlag>>;
}

export interface CliArgs {
  readonly values: Readonly<Record<string, string | number | boolean | undefined>>;
  readonly positional: readonly string[];
  readonly help: boolean;
}

export function parseCliArgs(spec: CliSpec, argv: readonly string[]): CliArgs {
  const values: Record<string, string | number | boolean | undefined> = {};
  for (const [k, f] of Object.entries(spec.flags)) values[k] = f.def ?? (f.kind === 'bool' ? false : undefined);
  const positional: string[] = [];
  let help = false;
  scanArgv(argv, {
    special: (arg) => (arg === '--help' || arg === '-h' ? (help = true) : false),
    kindOf: (name) => (spec.flags[name] ? (spec.flags[name]!.kind === 'bool' ? 'bool' : 'value') : undefined),
    onFlag: (name, raw) => {
      values[name] = convert(name, spec.flags[name]!, raw);
    },
    onOther: (arg) => positional.push(arg),
    unknown: (name) => new CliUsageError(`unknown flag --${name}; usage: ${spec.usage}`),
    fail: (message) => new CliUsageError(message),
  });
  return { values, positional, help };
}

/** What scanArgv needs from its caller; conversion and wording stay the caller's. */
export interface ArgvScan {
  /** An argument the caller handles itself (e.g. -h); return true when consumed. */
  special?(arg: string): boolean;
  /** 'bool' for a flag that takes no value, 'value' for one that does, undefined when unknown. */
  kindOf(name: string): 'bool' | 'value' | undefined;
  onFlag(name: string, raw: string): void;
  /** An argument that is not a --flag. */
  onOther(arg: string): void;
  unknown(name: string): Error;
  fail(message: string): Error;
}

/**
 * Walks argv the way both weftd and weft read it: --name=value, --name value,
 * and bare --name for booleans (raw value 'true').
 */
export function scanArgv(argv: readonly string[], h: ArgvScan): void {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (h.special?.(arg)) continue;
    if (!arg.startsWith('--')) {
      h.onOther(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const kind = h.kindOf(name);
    if (!kind) throw h.unknown(name);
    let raw: string;
    if (eq >= 0) raw = arg.slice(eq + 1);
    else if (kind === 'bool') raw = 'true';
    else {
      const next = argv[++i];
      if (next === undefined) throw h.fail(`flag --${name} needs a value`);
      raw = next;
    }
    h.onFlag(name, raw);
  }
}

function convert(name: string, f: CliFlag, raw: string): string | number | boolean {
  const bad = (why: string) => new CliUsageError(`invalid --${name} ${JSON.stringify(raw)}: ${why}`);
  if (f.kind === 'bool') {
    if (raw === 'true' || raw === '') return true;
    if (raw === 'false') return false;
    throw bad('must be true or false');
  }
  if (f.kind === 'int') {
    if (!/^\d+$/.test(raw)) throw bad('must be a whole number');
    const n = Number(raw);
    if (f.min !== undefined && n < f.min) throw bad(`must be at least ${f.min}`);
    if (f.max !== undefined && n > f.max) throw bad(`must be at most ${f.max}`);
    return n;
  }
  if (f.choices && !f.choices.includes(raw)) throw bad(`must be one of ${f.choices.join(', ')}`);
  return raw;
}
