// Reading JSON config objects the way flannel (Go's encoding/json) does: keys
// match case-insensitively (an exact match wins), unknown keys are ignored;
// every bad value becomes a ConfigError that names the field and quotes the
// value. Shared by the network config and each backend's config.
import { ConfigError } from './errors.js';

export type JsonObject = Record<string, unknown>;

export const show = (v: unknown): string => {
  if (v === undefined) return 'undefined';
  try { return JSON.stringify(v) ?? String(v); } catch { return String(v); }
};

export const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Go's encoding/json: an exact key match wins, else the first case-insensitive one. */
export function field(o: Readonly<JsonObject>, name: string): unknown {
  if (Object.hasOwn(o, name)) return o[name];
  const lower = name.toLowerCase();
  for (const k of Object.keys(o)) if (k.toLowerCase() === lower) return o[k];
  return undefined;
}

/** An absent, null (or, with emptyIsAbsent, "") value. */
export function absent(v: unknown, emptyIsAbsent = false): v is undefined | null {
  return v === undefined || v === null || (emptyIsAbsent && v === '');
}

export function intField(o: Readonly<JsonObject>, name: string, label: string, min: number, max: number, dflt: number): number;
export function intField(o: Readonly<JsonObject>, name: string, label: string, min: number, max: number, dflt?: undefined): number | undefined;
export function intField(o: Readonly<JsonObject>, name: string, label: string, min: number, max: number, dflt?: number): number | undefined {
  const v = field(o, name);
  if (absent(v)) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ConfigError(`${label} must be an integer between ${min} and ${max}, got ${show(v)}`);
  }
  return v;
}

export function boolField(o: Readonly<JsonObject>, name: string, label: string, dflt: boolean): boolean;
export function boolField(o: Readonly<JsonObject>, name: string, label: string, dflt?: undefined): boolean | undefined;
export function boolField(o: Readonly<JsonObject>, name: string, label: string, dflt?: boolean): boolean | undefined {
  const v = field(o, name);
  if (absent(v)) return dflt;
  if (typeof v !== 'boolean') throw new ConfigError(`${label} must be true or false, got ${show(v)}`);
  return v;
}

/** One of `choices` (strings), or undefined when absent. */
export function choiceField<T extends string>(o: Readonly<JsonObject>, name: string, label: string, choices: readonly T[]): T | undefined {
  const v = field(o, name);
  if (absent(v)) return undefined;
  if (typeof v !== 'string' || !(choices as readonly string[]).includes(v)) {
    throw new ConfigError(`${label} must be ${choices.map((c) => `"${c}"`).join(' or ')}, got ${show(v)}`);
  }
  return v as T;
}

export function deepFreeze<T>(o: T): T {
  if (typeof o === 'object' && o !== null && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o as JsonObject)) deepFreeze(v);
  }
  return o;
}
