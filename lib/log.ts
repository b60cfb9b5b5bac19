// The logger every module is handed (a child per component); the daemon's
// implementation writes JSON lines with pino (daemon/logger.ts). Library code
// never writes to the console itself.
//
// One `component` per line: a child logger given { component: 'x' } replaces
// its parent's component instead of adding a second key, so a line always
// names the innermost component that wrote it.

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];

export function isLogLevel(s: string): s is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(s);
}

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger whose lines carry `fields` too; a `component` field replaces the parent's. */
  child(fields: LogFields): Logger;
  /**
   * Whether a line at `level` would be written (absent: assume it would). For callers that
   * would build thousands of lines' fields only to have them dropped at the level set.
   */
  enabled?(level: Exclude<LogLevel, 'silent'>): boolean;
}

/** logger.enabled(level), true when the logger cannot say. */
export function logs(log: Logger, level: Exclude<LogLevel, 'silent'>): boolean {
  return log.enabled?.(level) ?? true;
}

/** A logger that drops everything. */
export const nullLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  child: () => nullLogger,
  enabled: () => false,
};
