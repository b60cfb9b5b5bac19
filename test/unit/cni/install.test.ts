// weft install-cni: the wrappers it writes run the plugin, under each name;
// a foreign file is not replaced without --force.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const WEFT = fileURLToPath(new URL('../../../cmd/weft.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'weft-install-cni-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const weft = (...args: string[]) => spawnSync(process.execPath, [WEFT, 'install-cni', ...args], { encoding: 'utf8' });

test('installs flannel and weft as executables that answer VERSION', () => {
  const bin = join(dir, 'bin');
  const r = weft('--bin-dir', bin);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`installed ${bin}/flannel, ${bin}/weft`));
  for (const name of ['flannel', 'weft']) {
    assert.is(statSync(join(bin, name)).mode & 0o777, 0o755);
    const v = spawnSync(join(bin, name), [], { input: '{"cniVersion":"1.0.0"}', encoding: 'utf8', env: { CNI_COMMAND: 'VERSION' } });
    assert.is(v.status, 0, v.stderr);
    assert.is(JSON.parse(v.stdout).cniVersion, '1.0.0');
  }
  assert.is(weft('--bin-dir', bin).status, 0, 'running it again updates its own files');
});

test('a file it did not write is left alone (exit 2) unless --force', () => {
  const bin = join(dir, 'foreign');
  assert.is(weft('--bin-dir', bin, '--names', 'weft').status, 0);
  writeFileSync(join(bin, 'flannel'), '\x7fELF pretend flannel binary', { mode: 0o755 });
  const r = weft('--bin-dir', bin);
  assert.is(r.status, 2);
  assert.match(r.stderr, /flannel exists and was not written by weft .*--force/);
  assert.match(readFileSync(join(bin, 'flannel'), 'latin1'), /pretend flannel/);
  assert.is(weft('--bin-dir', bin, '--force').status, 0);
  assert.match(readFileSync(join(bin, 'flannel'), 'utf8'), /weft install-cni/);
  assert.is(weft('--bin-dir', 'relative/dir').status, 2);
});

test.run();
