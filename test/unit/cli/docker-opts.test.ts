// `weft docker-opts` against what flannel's mk-docker-opts.sh writes (output
// observed from the script), its short options, the CLI end to end, and the
// docker.service drop-in that runs it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expandShortOptions, formatDockerOpts } from '../../../cli/docker-opts.js';

const WEFT = fileURLToPath(new URL('../../../cmd/weft.js', import.meta.url));
const e = { subnetAddress: '10.1.74.1/24', mtu: 1472, ipMasq: 'false' };
const all = { individual: false, combined: false, omitIpMasq: false, key: 'DOCKER_OPTS' };

test("the file mk-docker-opts.sh writes: individual variables in order, the combined one starting with a space", () => {
  assert.is(
    formatDockerOpts(e, all),
    'DOCKER_OPT_BIP="--bip=10.1.74.1/24"\nDOCKER_OPT_IPMASQ="--ip-masq=true"\nDOCKER_OPT_MTU="--mtu=1472"\nDOCKER_OPTS=" --bip=10.1.74.1/24 --ip-masq=true --mtu=1472"\n',
  );
});

test('-i, -c, -m, -k and an inherited value: as the script does them', () => {
  assert.is(formatDockerOpts({ ...e, ipMasq: 'true' }, { ...all, combined: true, key: 'DOCKER_NETWORK_OPTIONS' }), 'DOCKER_NETWORK_OPTIONS=" --bip=10.1.74.1/24 --ip-masq=false --mtu=1472"\n');
  assert.is(formatDockerOpts(e, { ...all, individual: true, omitIpMasq: true }), 'DOCKER_OPT_BIP="--bip=10.1.74.1/24"\nDOCKER_OPT_MTU="--mtu=1472"\n');
  assert.is(formatDockerOpts(e, { ...all, combined: true, existing: '--foo' }), 'DOCKER_OPTS="--foo  --bip=10.1.74.1/24 --ip-masq=true --mtu=1472"\n');
  assert.throws(() => formatDockerOpts({ ...e, ipMasq: 'yes' }, all), /Invalid value of FLANNEL_IPMASQ: yes/);
});

test("the script's getopts letters become the long flags", () => {
  assert.equal(expandShortOptions(['-f', '/a', '-d/b', '-ic', '-m', '-k', 'X']), ['--subnet-file=/a', '--output=/b', '--individual', '--combined', '--omit-ip-masq', '--key=X']);
  assert.equal(expandShortOptions(['-?']), ['--help']);
  assert.throws(() => expandShortOptions(['-z']), /unknown option -z/);
  assert.throws(() => expandShortOptions(['-f']), /option -f needs a value/);
});

test('weft docker-opts end to end: reads subnet.env, writes the file; no subnet.env: exit 1 saying weftd is not ready', () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-dopts-'));
  try {
    const env = join(dir, 'subnet.env');
    writeFileSync(env, 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.3.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n');
    const out = join(dir, 'run', 'docker_opts.env');
    const r = spawnSync(process.execPath, [WEFT, 'docker-opts', '-f', env, '-d', out, '-c', '-k', 'DOCKER_NETWORK_OPTIONS'], { encoding: 'utf8', env: { PATH: process.env.PATH } });
    assert.is(r.status, 0, r.stderr);
    assert.is(readFileSync(out, 'utf8'), 'DOCKER_NETWORK_OPTIONS=" --bip=10.244.3.1/24 --ip-masq=false --mtu=1450"\n');
    const missing = spawnSync(process.execPath, [WEFT, 'docker-opts', '--subnet-file', join(dir, 'none.env'), '--output', out, '--wait', '0'], { encoding: 'utf8' });
    assert.is(missing.status, 1);
    assert.match(missing.stderr, new RegExp(`weftd is not ready: ${join(dir, 'none.env')} does not exist`));
    const bad = spawnSync(process.execPath, [WEFT, 'docker-opts', '--key', '1X'], { encoding: 'utf8' });
    assert.is(bad.status, 2);
    assert.match(bad.stderr, /invalid --key "1X": must be a shell variable name/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const DROP_IN = fileURLToPath(new URL('../../../../deploy/docker.service.d/weft.conf', import.meta.url));

test('deploy/docker.service.d/weft.conf: after weftd, runs weft docker-opts, reads its file and passes the variable to dockerd; systemd-analyze verify is silent', () => {
  const text = readFileSync(DROP_IN, 'utf8');
  assert.match(text, /^After=weftd\.service$/m);
  assert.match(text, /^EnvironmentFile=-\/run\/weft\/docker\.env$/m);
  const pre = /^ExecStartPre=\/usr\/bin\/env -u DOCKER_NETWORK_OPTIONS \/usr\/local\/bin\/weft (docker-opts .*)$/m.exec(text);
  assert.ok(pre, 'ExecStartPre runs weft docker-opts');
  assert.match(text, /^ExecStart=\S+dockerd .*\$DOCKER_NETWORK_OPTIONS$/m);
  const dir = mkdtempSync(join(tmpdir(), 'weft-dropin-'));
  try {
    // The flags of ExecStartPre, run for real (paths moved into the temporary directory), write DOCKER_NETWORK_OPTIONS
    // to the file EnvironmentFile names, and the stale value in the environment is not prepended.
    const env = join(dir, 'subnet.env');
    writeFileSync(env, 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.3.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n');
    const args = pre[1]!.replace('/run/flannel/subnet.env', env).replace('/run/weft/docker.env', join(dir, 'docker.env')).split(' ');
    const r = spawnSync('/usr/bin/env', ['-u', 'DOCKER_NETWORK_OPTIONS', process.execPath, WEFT, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH, DOCKER_NETWORK_OPTIONS: ' --bip=10.244.9.1/24' } });
    assert.is(r.status, 0, r.stderr);
    assert.match(readFileSync(join(dir, 'docker.env'), 'utf8'), /^DOCKER_NETWORK_OPTIONS=" --bip=10\.244\.3\.1\/24 --ip-masq=false --mtu=1450"$/m);
    // verify loads <unit>.d/ beside a stand-in docker.service and checks that the commands exist.
    mkdirSync(join(dir, 'docker.service.d'));
    writeFileSync(join(dir, 'docker.service'), '[Unit]\nDescription=stand-in\n[Service]\nExecStart=/bin/true\n');
    writeFileSync(join(dir, 'docker.service.d', 'weft.conf'), text.replace('/usr/local/bin/weft', '/bin/true').replace(/^ExecStart=\S+/m, 'ExecStart=/bin/true'));
    const v = spawnSync('systemd-analyze', ['verify', join(dir, 'docker.service')], { encoding: 'utf8' });
    assert.is(v.error, undefined, 'systemd-analyze runs (Debian package systemd)');
    assert.is(v.status, 0, v.stderr);
    assert.is((v.stdout + v.stderr).trim(), '', 'no warnings');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
