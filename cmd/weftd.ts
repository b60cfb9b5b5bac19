#!/usr/bin/env -S node --v8-pool-size=1 --no-turbo-inlining
// weftd: the per-host overlay agent. Flags, signals and exit status only; the
// agent's life is daemon/daemon.ts. See --help. The shebang's node flags are
// lib/node-flags.ts's (a unit test holds them equal).
// Order matters for restarts: the flags, then the data plane resumed from saved
// state (daemon/resume.ts), and only then the modules that take long to load
// (the etcd client, the logger, metrics): traffic flows again within tens of
// milliseconds of the process starting, not after all of them.
import { readFileSync } from 'node:fs';
import { parseWeftdFlags, usage } from '../daemon/flags.js';
import { cleanupDataPlane, resumeDataPlane } from '../daemon/resume.js';
import { errorCode, UsageError } from '../lib/errors.js';
import { fdStore } from '../host/fd-store.js';
import { applyHeapPolicy } from '../daemon/heap.js';

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function main(): Promise<number> {
  let cfg;
  try {
    cfg = parseWeftdFlags(process.argv.slice(2), process.env);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`weftd: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  if (cfg.help) {
    process.stdout.write(usage() + '\n');
    return 0;
  }
  if (cfg.version) {
    process.stdout.write(`weftd ${version()}\n`);
    return 0;
  }
  if (cfg.cleanup) {
    try {
      const done = cleanupDataPlane(cfg);
      process.stdout.write(done.length ? done.map((d) => `weftd: ${d}\n`).join('') : 'weftd: nothing to clean up\n');
      return 0;
    } catch (e) {
      process.stderr.write(`weftd: --cleanup: ${(e as Error).message}\n`);
      return 1;
    }
  }
  // Before anything allocates much: see daemon/heap.ts.
  applyHeapPolicy();
  // systemd's fd store: what it passed (LISTEN_FDS) is taken over first, before any child could inherit it.
  fdStore();
  const early = resumeDataPlane(cfg);
  const [{ Daemon }, { createLogger }] = await Promise.all([import('../daemon/daemon.js'), import('../daemon/logger.js')]);
  const log = createLogger(cfg.logLevel, { component: 'weftd' });
  const ac = new AbortController();
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.on(sig, () => {
      log.info('stopping; kernel state and lease are kept', { signal: sig });
      ac.abort();
    });
  }
  log.info('starting', { version: version(), pid: process.pid });
  if (early.resumed) {
    log.info('resumed the data path from saved state, before etcd', {
      backend: early.resumed.type, ms: Math.round(early.ms), sinceStartMs: Math.round(early.sinceStartMs), at: new Date(early.doneAt).toISOString(), ...early.resumed.summary,
    });
  }
  for (const s of early.skipped) log.warn('not resuming the data path from saved state', { backend: s.type, reason: s.reason });
  const daemon = new Daemon(cfg, log, undefined, early.resumed);
  // SIGUSR1: one log line with the data plane's counters (what /metrics also serves).
  process.on('SIGUSR1', () => {
    log.info('stats', { phase: daemon.status.phase, subnet: daemon.status.lease?.subnet.toString(), ...daemon.status.backend?.stats() });
  });
  try {
    await daemon.run(ac.signal);
    log.info('stopped');
    return 0;
  } catch (e) {
    const cfgErr = errorCode(e) === 'EBADCONFIG';
    log.error(cfgErr ? 'bad configuration' : 'failed', { err: e });
    process.stderr.write(`weftd: ${(e as Error).message}\n`);
    return cfgErr ? 2 : 1;
  }
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`weftd: unexpected failure: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
