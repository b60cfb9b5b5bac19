// The first thing weftd does, before etcd and before the heavy modules load:
// every backend plug-in that can (plugin.resume) starts its data plane again
// from what the previous weftd saved in --state-dir, so a restart (an upgrade,
// a crash) does not cut traffic while the new process connects to etcd. The
// daemon hands what resumed to the backend it creates (ctx.resumed), which
// adopts it when the network config and flags still match. --cleanup is here
// too: it removes what the plug-ins keep across restarts.
import { BACKENDS } from '../backend/builtin.js';
import type { BackendPlugin, Resumed } from '../backend/backend.js';
import type { BackendRegistry } from '../backend/registry.js';
import { keyOf } from '../lib/flags.js';
import { NetlinkHandle } from '../netlink/index.js';
import type { AgentConfig } from './flags.js';

export interface EarlyResume {
  readonly resumed?: Resumed;
  /** Per backend type that could not resume although it had saved state: why. */
  readonly skipped: ReadonlyArray<{ type: string; reason: string }>;
  /** Milliseconds it took, and how long after the process started it was done. */
  readonly ms: number;
  readonly sinceStartMs: number;
  /** When it was done (epoch ms). */
  readonly doneAt: number;
}

/** A backend's own flag values, by key, from the parsed config. */
function flagsOf(cfg: AgentConfig, plugin: BackendPlugin): Record<string, unknown> {
  return Object.fromEntries(plugin.flags.map((f) => [keyOf(f), cfg.backendFlags[keyOf(f)]]));
}

export function resumeDataPlane(cfg: AgentConfig, backends: BackendRegistry = BACKENDS): EarlyResume {
  const t0 = performance.now();
  const skipped: Array<{ type: string; reason: string }> = [];
  let resumed: Resumed | undefined;
  let nl: NetlinkHandle | undefined;
  try {
    nl = NetlinkHandle.open();
    for (const p of backends.all()) {
      if (!p.resume || resumed) continue;
      try {
        const r = p.resume({ flags: flagsOf(cfg, p), stateDir: cfg.stateDir, nl });
        if (r.resumed) resumed = r.resumed;
        if (r.skipped) skipped.push({ type: p.type, reason: r.skipped });
      } catch (e) {
        skipped.push({ type: p.type, reason: (e as Error).message });
      }
    }
  } catch (e) {
    skipped.push({ type: '*', reason: `netlink: ${(e as Error).message}` });
  } finally {
    nl?.close();
  }
  const t1 = performance.now();
  return { ...(resumed ? { resumed } : {}), skipped, ms: t1 - t0, sinceStartMs: t1, doneAt: performance.timeOrigin + t1 };
}

/** weftd --cleanup: what each plug-in removed; throws the first plug-in's refusal. */
export function cleanupDataPlane(cfg: AgentConfig, backends: BackendRegistry = BACKENDS): string[] {
  const nl = NetlinkHandle.open();
  try {
    return backends.all().flatMap((p) => p.cleanup?.({ flags: flagsOf(cfg, p), stateDir: cfg.stateDir, nl }) ?? []);
  } finally {
    nl.close();
  }
}
