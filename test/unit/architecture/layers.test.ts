// The tree is the architecture, and this test keeps it so: every import of
// every source file is checked against the one-way dependency rule (DESIGN.md,
// README "Layout"), third-party packages stay in the layer that owns them,
// and no source file grows past 500 lines. A failure names the file and the
// import that breaks the rule.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, posix, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

/** Top-level folder → the folders its files may import. Lower layers first. */
export const LAYERS: Readonly<Record<string, readonly string[]>> = {
  lib: ['lib'],
  native: ['lib', 'native'],
  netlink: ['lib', 'native', 'netlink'],
  'subnet-manager': ['lib', 'subnet-manager'],
  host: ['lib', 'native', 'netlink', 'host'],
  // subnet-manager only for its types (leases, batches): see TYPE_ONLY.
  backend: ['lib', 'native', 'netlink', 'host', 'subnet-manager', 'backend'],
  daemon: ['lib', 'native', 'netlink', 'host', 'subnet-manager', 'backend', 'daemon'],
  // backend: weft status reads a WireGuard device the way the backend does (generic netlink or wireguard-go's UAPI).
  cli: ['lib', 'native', 'netlink', 'host', 'subnet-manager', 'backend', 'daemon', 'cli'],
  // The CNI plugin is its own executable, run by container runtimes for every container: it reads
  // subnet.env through host/ and must never load the daemon, etcd, netlink or the native addon.
  cni: ['lib', 'host', 'cni'],
  // The lab and the bench sit beside the product: only cmd/ (and tests) import them.
  lab: ['lib', 'native', 'netlink', 'subnet-manager', 'lab'],
  bench: ['lib', 'native', 'netlink', 'lab', 'bench'],
  cmd: ['lib', 'native', 'netlink', 'subnet-manager', 'host', 'backend', 'daemon', 'cli', 'cni', 'lab', 'bench', 'cmd'],
};

/** from → to pairs allowed only as `import type` / `export type`. */
export const TYPE_ONLY: ReadonlyArray<[string, string]> = [['backend', 'subnet-manager']];

/** Packages that belong to one layer (anything else from npm or node: is free). */
export const PACKAGES: Readonly<Record<string, readonly string[]>> = {
  etcd3: ['subnet-manager', 'lab'],
  pino: ['daemon'],
  'prom-client': ['daemon'],
  'raw-socket': ['cli'],
};

export const MAX_LINES = 500;

export interface ImportRef {
  readonly spec: string;
  readonly typeOnly: boolean;
  readonly line: number;
}

/** Every static import/export-from and dynamic import() of a TypeScript source text. */
export function importsOf(text: string): ImportRef[] {
  const out: ImportRef[] = [];
  const lineAt = (i: number) => text.slice(0, i).split('\n').length;
  const stat = /^\s*(import|export)(\s+type)?\b[^;'"]*?\bfrom\s*['"]([^'"]+)['"]/gms;
  for (const m of text.matchAll(stat)) out.push({ spec: m[3]!, typeOnly: m[2] !== undefined, line: lineAt(m.index!) });
  const bare = /^\s*import\s*['"]([^'"]+)['"]/gm;
  for (const m of text.matchAll(bare)) out.push({ spec: m[1]!, typeOnly: false, line: lineAt(m.index!) });
  const dyn = /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;
  for (const m of text.matchAll(dyn)) out.push({ spec: m[1]!, typeOnly: false, line: lineAt(m.index!) });
  return out;
}

/** The rule violations of one file (path relative to the root, '/'-separated). */
export function violations(file: string, text: string): string[] {
  const from = file.split('/')[0]!;
  const allowed = LAYERS[from];
  if (!allowed) return [`${file}: top-level folder ${from}/ is not in the layer table`];
  const out: string[] = [];
  for (const imp of importsOf(text)) {
    const where = `${file}:${imp.line} imports '${imp.spec}'`;
    if (imp.spec.startsWith('.')) {
      const target = posix.normalize(posix.join(posix.dirname(file), imp.spec));
      const to = target.split('/')[0]!;
      if (target.startsWith('..') || !allowed.includes(to)) out.push(`${where}: ${from}/ may import only ${allowed.join(', ')}`);
      else if (!imp.typeOnly && TYPE_ONLY.some(([a, b]) => a === from && b === to)) out.push(`${where}: ${from}/ may import ${to}/ only with 'import type'`);
      continue;
    }
    const pkg = imp.spec.startsWith('@') ? imp.spec.split('/').slice(0, 2).join('/') : imp.spec.split('/')[0]!;
    const owners = PACKAGES[pkg];
    if (owners && !owners.includes(from)) out.push(`${where}: the package ${pkg} is used only in ${owners.join(', ')}`);
  }
  return out;
}

/** Source files of the product, the lab, the bench and the entry points (tests aside). */
function sources(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(join(ROOT, dir))) {
      const p = join(dir, name);
      if (statSync(join(ROOT, p)).isDirectory()) walk(p);
      else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p.split(sep).join('/'));
    }
  };
  for (const top of Object.keys(LAYERS)) {
    try {
      walk(top);
    } catch {
      /* a layer without files yet */
    }
  }
  return out.sort();
}

test('every layer folder has sources, and every top-level source folder is in the layer table', () => {
  const files = sources();
  for (const layer of ['lib', 'native', 'netlink', 'subnet-manager', 'host', 'backend', 'daemon', 'cli', 'cni', 'cmd', 'lab', 'bench']) {
    assert.ok(files.some((f) => f.startsWith(`${layer}/`)), `no sources in ${layer}/`);
  }
  const tops = readdirSync(ROOT).filter((n) => {
    if (['node_modules', 'dist', 'build', 'test', 'scripts', '.git'].includes(n)) return false;
    try {
      return statSync(join(ROOT, n)).isDirectory() && readdirSync(join(ROOT, n)).some((f) => f.endsWith('.ts'));
    } catch {
      return false;
    }
  });
  assert.equal(tops.filter((t) => !(t in LAYERS)), [], 'a new top-level folder of TypeScript needs a row in LAYERS');
});

test('imports point one way: no file imports a layer above it (or the lab/bench), packages stay in their layer', () => {
  const bad = sources().flatMap((f) => violations(f, readFileSync(join(ROOT, f), 'utf8')));
  assert.equal(bad, [], `\n${bad.join('\n')}\n`);
});

test(`no source file is longer than ${MAX_LINES} lines`, () => {
  const long = sources()
    .map((f) => [f, readFileSync(join(ROOT, f), 'utf8').split('\n').length] as const)
    .filter(([, n]) => n > MAX_LINES)
    .map(([f, n]) => `${f}: ${n} lines`);
  assert.equal(long, []);
});

test('the checker itself: it sees static, re-export, type-only and dynamic imports and names each breach', () => {
  const text = [
    "import { Daemon } from '../daemon/daemon.js';",
    "import type { Lease } from '../subnet-manager/index.js';",
    "import { SubnetManager } from '../subnet-manager/index.js';",
    "export { x } from '../lib/ip.js';",
    'const m = await import("../lab/demo.js");',
    "import { Etcd3 } from 'etcd3';",
    "import {\n  a,\n  b,\n} from '../cli/status.js';",
  ].join('\n');
  const v = violations('backend/x.ts', text);
  assert.is(v.length, 5, v.join('\n'));
  assert.match(v[0]!, /^backend\/x\.ts:1 imports '\.\.\/daemon\/daemon\.js': backend\/ may import only /);
  assert.match(v.join('\n'), /backend\/x\.ts:3 imports '\.\.\/subnet-manager\/index\.js': backend\/ may import subnet-manager\/ only with 'import type'/);
  assert.match(v.join('\n'), /backend\/x\.ts:7 imports '\.\.\/cli\/status\.js'/);
  assert.match(v.join('\n'), /imports '\.\.\/lab\/demo\.js'/);
  assert.match(v.join('\n'), /the package etcd3 is used only in subnet-manager, lab/);
  assert.equal(violations('cmd/weft.ts', "const x = await import('../lab/demo.js');"), []);
  assert.equal(violations('lib/x.ts', "import { y } from '../netlink/index.js';").length, 1);
});

test.run();
