// weftd's logger: one JSON object per line on stderr, written by pino, behind
// lib/log.ts's Logger. One `component` key per line: the component is kept
// apart from pino's bindings and written with each line, so a child's
// component replaces its parent's (lib/log.ts says why).
import pino, { type Logger as PinoLogger } from 'pino';
import { isLogLevel, type LogFields, type Logger, type LogLevel } from '../lib/log.js';

export { isLogLevel, type Logger, type LogLevel };

/** Errors become { message, code, errno, op, ... }: what an operator needs, without a stack per line. */
function serialize(v: unknown): unknown {
  if (v instanceof Error) {
    const o: Record<string, unknown> = { message: v.message };
    for (const k of ['code', 'errno', 'op', 'key', 'value', 'extAck'] as const) {
      const x = (v as Error & Partial<Record<typeof k, unknown>>)[k];
      if (x !== undefined) o[k] = x;
    }
    return o;
  }
  return v;
}

function fieldsOf(fields: LogFields, component: string | undefined): LogFields {
  const out: LogFields = component === undefined ? {} : { component };
  for (const [k, v] of Object.entries(fields)) if (k !== 'component') out[k] = serialize(v);
  return out;
}

function wrap(p: PinoLogger, component: string | undefined): Logger {
  const line = (level: 'debug' | 'info' | 'warn' | 'error') => (m: string, f?: LogFields) => {
    if (!p.isLevelEnabled(level)) return;
    p[level](fieldsOf(f ?? {}, component), m);
  };
  return {
    debug: line('debug'),
    info: line('info'),
    warn: line('warn'),
    error: line('error'),
    child: (fields) => {
      const c = typeof fields.component === 'string' ? fields.component : component;
      const rest = fieldsOf(fields, undefined);
      return wrap(Object.keys(rest).length ? p.child(rest) : p, c);
    },
    enabled: (level) => p.isLevelEnabled(level),
  };
}

/**
 * A logger at `level` with `base` fields on every line. `write` receives each
 * line (without newline) instead of stderr; tests use it.
 */
export function createLogger(level: LogLevel = 'info', base: LogFields = {}, write?: (line: string) => void): Logger {
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
  return wrap(p, undefined).child(base);
}
