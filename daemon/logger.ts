// Structured logs: one JSON object per line on stderr, written by pino.
// Components receive a Logger and derive children with their own fields;
// library code never writes to the console directly.
import pino, { type Logger as PinoLogger } from 'pino';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

const LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export function isLogLevel(s: string): s is LogLevel {
  return (LEVELS as readonly string[]).includes(s);
}

/** Errors become { message, code, errno, op, ... }: what an operator needs, without a stack per line. */
function serialize(v: unknown): unknown {
  if (v instanceof Error) {
    const o: Record<string, unknown> = { message: v.message };
    for (const k of ['code', 'errno', 'op', 'key', 'value', 'extAck']) {
      const x = (v as unknown as Record<string, unknown>)[k];
      if (x !== undefined) o[k] = x;
    }
    return o;
  }
  return v;
}

function fieldsOf(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) out[k] = serialize(v);
  return out;
}

function wrap(p: PinoLogger): Logger {
  return {
    debug: (m, f) => (f ? p.debug(fieldsOf(f), m) : p.debug(m)),
    info: (m, f) => (f ? p.info(fieldsOf(f), m) : p.info(m)),
    warn: (m, f) => (f ? p.warn(fieldsOf(f), m) : p.warn(m)),
    error: (m, f) => (f ? p.error(fieldsOf(f), m) : p.error(m)),
    child: (fields) => wrap(p.child(fieldsOf(fields))),
  };
}

/**
 * A logger at `level` with `base` fields on every line. `write` receives each
 * line (without newline) instead of stderr; tests use it.
 */
export function createLogger(
  level: LogLevel = 'info',
  base: Record<string, unknown> = {},
  write?: (line: string) => void,
): Logger {
  // Synchronous stderr: a line logged right before exit is never lost.
  const dest = write ? { write: (s: string) => write(s.replace(/\n$/, '')) } : pino.destination({ fd: 2, sync: true });
  const p = pino(
    {
      level,
      base: null,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      // Errors are already reduced by serialize(); pino's own would drop code/errno.
      serializers: { err: (e: unknown) => e },
    },
    dest,
  );
  return wrap(Object.keys(base).length ? p.child(fieldsOf(base)) : p);
}

/** A logger that drops everything, for tests that do not look at logs. */
export const silentLogger: Logger = createLogger('silent');
