// The CNI conventions a plugin answers with: environment checks per command,
// config decoding, version checks (codes as in the spec and the Go skel).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parsePluginConf } from '../../../cni/netconf.js';
import { CniError, NoCommand, readCniArgs, versionAtLeast } from '../../../cni/spec.js';

const ENV = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_NETNS: '/run/netns/x', CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin:/usr/lib/cni' };

function code(fn: () => unknown): [number, string] {
  try {
    fn();
  } catch (e) {
    if (e instanceof CniError) return [e.cniCode, e.message];
    throw e;
  }
  throw new Error('did not throw');
}

test('environment: parsed, CNI_PATH split', () => {
  const a = readCniArgs(ENV);
  assert.equal([...a.path], ['/opt/cni/bin', '/usr/lib/cni']);
  assert.is(a.command, 'ADD');
});

test('environment: what each command requires; bad values; code 4 (3 for an empty container ID)', () => {
  assert.equal(code(() => readCniArgs({ ...ENV, CNI_NETNS: '' })), [4, 'required env variables [CNI_NETNS] missing']);
  assert.equal(code(() => readCniArgs({ CNI_COMMAND: 'ADD' })), [4, 'required env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME,CNI_PATH] missing']);
  assert.ok(readCniArgs({ ...ENV, CNI_COMMAND: 'DEL', CNI_NETNS: '' }), 'DEL needs no netns');
  assert.ok(readCniArgs({ CNI_COMMAND: 'VERSION' }), 'VERSION needs nothing else');
  assert.equal(code(() => readCniArgs({ ...ENV, CNI_COMMAND: 'UP' })), [4, 'unknown CNI_COMMAND: UP']);
  assert.equal(code(() => readCniArgs({ ...ENV, CNI_CONTAINERID: '-bad' }))[0], 4);
  assert.equal(code(() => readCniArgs({ ...ENV, CNI_IFNAME: 'eth0:1' })), [4, 'CNI_IFNAME "eth0:1": interface name contains / or : or whitespace characters']);
  assert.equal(code(() => readCniArgs({ ...ENV, CNI_IFNAME: 'a-very-long-name0' }))[0], 4);
  assert.throws(() => readCniArgs({}), (e: unknown) => e instanceof NoCommand);
});

test('config: not JSON is 6, no name is 7, a version it does not know is 1, bad weft keys are 7', () => {
  assert.equal(code(() => parsePluginConf('{"name":', { checkVersion: true }))[0], 6);
  assert.equal(code(() => parsePluginConf('[1]', { checkVersion: true }))[0], 6);
  assert.equal(code(() => parsePluginConf('{"type":"flannel"}', { checkVersion: true })), [7, 'missing network name']);
  assert.equal(code(() => parsePluginConf('{"name":"a b"}', { checkVersion: true }))[0], 7);
  const [c, m] = code(() => parsePluginConf('{"name":"n","cniVersion":"9.9.9"}', { checkVersion: true }));
  assert.equal([c, m], [1, 'incompatible CNI versions']);
  assert.equal(code(() => parsePluginConf('{"name":"n","subnetFileTimeout":-1}', { checkVersion: true })), [7, 'subnetFileTimeout must be a number of seconds from 0 to 600, got -1']);
  assert.equal(code(() => parsePluginConf('{"name":"n","delegate":"bridge"}', { checkVersion: true })), [7, 'delegate must be an object, got "bridge"']);
  const ok = parsePluginConf('{"name":"n"}', { checkVersion: true });
  assert.equal([ok.subnetFile, ok.dataDir, ok.subnetFileTimeoutMs, ok.cniVersion], ['/run/flannel/subnet.env', '/var/lib/cni/flannel', 10_000, '']);
});

test('versions compare numerically', () => {
  assert.ok(versionAtLeast('0.4.0', '0.4.0'));
  assert.ok(versionAtLeast('1.0.0', '0.4.0'));
  assert.not.ok(versionAtLeast('0.3.1', '0.4.0'));
  assert.ok(versionAtLeast('0.10.0', '0.4.0'));
});

test.run();
