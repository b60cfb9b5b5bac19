#!/usr/bin/env node
// Runs every *.test.js under the given directories, each in its own Node
// process with a time limit, sums uvu's per-file summaries and ends with the
// line "N passed, N failed". A file that crashes or times out before its
// summary counts as one failure. After each file, any namespace it made and
// left behind (listed in WEFT_NETNS_REGISTRY), and its processes, are removed.
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

const args = process.argv.slice(2);
const fileTimeoutMs = Number(process.env.WEFT_TEST_FILE_TIMEOUT_MS ?? 10 * 60 * 1000);
const filter = process.env.WEFT_TEST_FILTER ? new RegExp(process.env.WEFT_TEST_FILTER) : null;

function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...findTests(p));
    else if (name.endsWith('.test.js') && (!filter || filter.test(p))) out.push(p);
  }
  return out;
}

const strip = (s) => s.replace(/\x1b\[[0-9;]*m/g, '');

// Test processes list every namespace they make in WEFT_NETNS_REGISTRY
// (lab/netns.ts registerNetns); after each file, those still present, and
// their processes, are removed. Another run's namespaces are never touched.
function sweepLabLeftovers(registry) {
  let names = [];
  try { names = readFileSync(registry, 'utf8').split('\n').filter(Boolean); } catch { return; }
  rmSync(registry, { force: true });
  if (process.getuid?.() !== 0) return;
  const existing = new Set((spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '').split('\n').map((l) => l.split(' ')[0]));
  for (const name of new Set(names)) {
    if (!existing.has(name)) continue;
    const pids = spawnSync('ip', ['netns', 'pids', name], { encoding: 'utf8' }).stdout ?? '';
    for (const pid of pids.split('\n').filter(Boolean)) {
      try { process.kill(Number(pid), 'SIGKILL'); } catch { /* already gone */ }
    }
    spawnSync('ip', ['netns', 'del', name]);
    process.stdout.write(`  (cleanup) removed leftover namespace ${name}\n`);
  }
}

function runFile(file, registry) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, ['--enable-source-maps', file], {
      env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1', WEFT_NETNS_REGISTRY: registry },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let out = '';
    child.stdout.on('data', (d) => { out += d; process.stdout.write(d); });
    child.stderr.on('data', (d) => { out += d; process.stderr.write(d); });
    const timer = setTimeout(() => {
      out += `\n${file}: timed out after ${fileTimeoutMs} ms\n`;
      try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
    }, fileTimeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const text = strip(out);
      const total = Number(/Total:\s+(\d+)/.exec(text)?.[1] ?? NaN);
      const passed = Number(/Passed:\s+(\d+)/.exec(text)?.[1] ?? NaN);
      const skipped = Number(/Skipped:\s+(\d+)/.exec(text)?.[1] ?? 0);
      let p = 0, f = 0;
      if (Number.isFinite(total) && Number.isFinite(passed)) {
        p = passed;
        f = total - passed; // uvu's Total counts the tests that ran: skipped ones are not in it
        if (f === 0 && code !== 0) f = 1; // summary printed, then the process failed
      } else {
        f = 1;
      }
      resolve({ file, passed: p, failed: f, skipped, code, signal, ms: Date.now() - started });
    });
  });
}

const files = args.filter((d) => { try { return statSync(d).isDirectory(); } catch { return false; } }).flatMap((d) => findTests(d));
if (files.length === 0) {
  console.log(`no test files under ${args.join(' ')}`);
  console.log('0 passed, 1 failed');
  process.exit(1);
}
let passed = 0, failed = 0, skipped = 0;
const failedFiles = [];
for (const file of files) {
  process.stdout.write(`\n=== ${relative(process.cwd(), file)}\n`);
  const registry = join(tmpdir(), `weft-netns-${process.pid}-${Date.now()}.list`);
  const r = await runFile(file, registry);
  sweepLabLeftovers(registry);
  passed += r.passed; failed += r.failed; skipped += r.skipped;
  if (r.failed > 0) failedFiles.push(`${relative(process.cwd(), r.file)} (exit ${r.code ?? r.signal})`);
  process.stdout.write(`--- ${relative(process.cwd(), file)}: ${r.passed} passed, ${r.failed} failed${r.skipped ? `, ${r.skipped} skipped` : ''} (${(r.ms / 1000).toFixed(1)} s)\n`);
}
if (failedFiles.length) console.log(`\nfailing files:\n  ${failedFiles.join('\n  ')}`);
// The last line is exactly "N passed, N failed" (what CI reads); skipped tests are told the line before.
if (skipped) console.log(`\n${skipped} skipped (each printed its reason above)`);
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
