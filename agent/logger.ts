// A small structured logger: one JSON object per line on stderr. Components
// receive a Logger and derive children with their own fields; library code
// never writes to the console directly.
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

const rank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export function isLogLevel(s: string): s is LogLevel {
  return Object.hasOwn(rank, s);
}

function serialize(v: unknown): unknown {
  if (v instanceof Error) {
    const o: Record<string, unknown> = { message: v.message };
    for (const k of ['code', 'errno', 'op', 'key', 'value']) {
      const x = (v as unknown as Record<string, unknown>)[k];
      if (x !== undefined) o[k] = x;
    }
    return o;
  }
  return v;
}

export function createLogger(
  level: LogLevel = 'info',
  base: Record<string, unknown> = {},
  write: (line: string) => void = (line) => process.stderr.write(line + '\n'),
): Logger {
  const min = rank[level];
  const emit = (lvl: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (rank[lvl] < min) return;
    const rec: Record<string, unknown> = { time: new Date().toISOString(), level: lvl, ...base, msg };
    if (fields) for (const [k, v] of Object.entries(fields)) rec[k] = serialize(v);
    write(JSON.stringify(rec));
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger(level, { ...base, ...fields }, write),
  };
}

/** A logger that drops everything, for tests that do not look at logs. */
export const silentLogger: Logger = createLogger('silent');
