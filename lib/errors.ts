// The base of weft's errors: a stable `code` to branch on, and whether the
// same call may succeed if tried again later (`retryable`).

export abstract class WeftError extends Error {
  abstract readonly code: string;
  abstract readonly retryable: boolean;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A base class for errors of one kind: `class LeaseError extends errorKind('EBADLEASE', false) {}`. */
export function errorKind<C extends string>(code: C, retryable: boolean) {
  return class extends WeftError {
    readonly code: C = code;
    readonly retryable: boolean = retryable;
  };
}

/** Bad configuration (network config, a backend's config, flags): exit status 2, no retry helps. */
export class ConfigError extends errorKind('EBADCONFIG', false) {}

/** A bad command line or environment value: exit status 2. */
export class UsageError extends errorKind('EUSAGE', false) {}

export function isRetryable(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { retryable?: unknown }).retryable === true;
}

export function errorCode(e: unknown): string | undefined {
  const c = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
  return typeof c === 'string' ? c : undefined;
}
