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
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') { help = true; continue; }
    if (!arg.startsWith('--')) { positional.push(arg); continue; }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const f = spec.flags[name];
    if (!f) throw new CliUsageError(`unknown flag --${name}; usage: ${spec.usage}`);
    let raw: string;
    if (eq >= 0) raw = arg.slice(eq + 1);
    else if (f.kind === 'bool') raw = 'true';
    else {
      const next = argv[++i];
      if (next === undefined) throw new CliUsageError(`flag --${name} needs a value`);
      raw = next;
    }
    values[name] = convert(name, f, raw);
  }
  return { values, positional, help };
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
