// etcd security: an etcd that requires client certificates (made here with
// openssl). The agent works with the right certificate and fails fast, with a
// message naming the problem, with none or a wrong one.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Lab, type TrackedProcess } from '../../../lab/lab.js';
import { PREFIX, waitFor, waitReady, WEFTD, type LabAgent } from '../../../lab/agent.js';

let lab: Lab;
let etcd: TrackedProcess;
let pki: string;
const ETCD_URL = 'https://192.0.2.250:2379';

function openssl(args: string[]): void {
  execFileSync('openssl', args, { cwd: pki, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A CA, and a certificate it signs for `cn` with the given SANs and usage. */
function makeCa(name: string): void {
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}-key.pem`, '-out', `${name}.pem`, '-days', '1', '-subj', `/CN=${name}`]);
}
function makeCert(ca: string, name: string, cn: string, ext: string): void {
  writeFileSync(join(pki, `${name}.ext`), ext);
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}-key.pem`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`]);
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}-key.pem`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '1', '-extfile', `${name}.ext`]);
}

const etcdctl = (args: string[]) =>
  lab.execIn(lab.outside!.ns, 'etcdctl', ['--endpoints', ETCD_URL, '--cacert', join(pki, 'ca.pem'), '--cert', join(pki, 'client.pem'), '--key', join(pki, 'client-key.pem'), ...args], {
    env: { ...process.env, ETCDCTL_API: '3' },
  });

function agent(extra: string[], name: string): LabAgent {
  const host = lab.host(1);
  const args = [WEFTD, '--etcd-endpoints', ETCD_URL, '--subnet-file', join(host.dir, 'subnet.env'), '--state-dir', join(host.dir, 'state'), '--log-level', 'debug', ...extra];
  const proc = lab.spawnIn(host.ns, process.execPath, ['--enable-source-maps', ...args], { logName: name });
  return { host, proc, subnetFile: join(host.dir, 'subnet.env'), args };
}

async function exitOf(a: LabAgent, withinMs: number): Promise<{ code: number | null; ms: number; log: string }> {
  const start = Date.now();
  const r = await Promise.race([a.proc.exited, new Promise<null>((res) => setTimeout(() => res(null), withinMs))]);
  if (r === null) {
    const log = lab.readLog(a.proc);
    await lab.stop(a.proc, { signal: 'SIGKILL' });
    assert.unreachable(`weftd did not fail within ${withinMs} ms:\n${log.slice(-2000)}`);
  }
  return { code: r!.code, ms: Date.now() - start, log: lab.readLog(a.proc) };
}

test.before(async () => {
  lab = await Lab.create({ hosts: 1, etcd: false, outsideHost: true });
  pki = join(lab.dir, 'pki');
  execFileSync('mkdir', ['-p', pki]);
  makeCa('ca');
  makeCert('ca', 'server', 'etcd', 'subjectAltName=IP:192.0.2.250,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  makeCert('ca', 'client', 'weftd', 'extendedKeyUsage=clientAuth\n');
  makeCa('rogue');
  makeCert('rogue', 'rogue-client', 'weftd', 'extendedKeyUsage=clientAuth\n');
  const dir = join(lab.dir, 'etcd-tls');
  etcd = lab.spawnIn(lab.outside!.ns, 'etcd', [
    '--name', 'tls', '--data-dir', dir,
    '--listen-client-urls', ETCD_URL, '--advertise-client-urls', ETCD_URL,
    '--listen-peer-urls', 'http://192.0.2.250:2380', '--initial-advertise-peer-urls', 'http://192.0.2.250:2380',
    '--initial-cluster', 'tls=http://192.0.2.250:2380',
    '--cert-file', join(pki, 'server.pem'), '--key-file', join(pki, 'server-key.pem'),
    '--client-cert-auth', '--trusted-ca-file', join(pki, 'ca.pem'),
    '--log-level', 'warn', '--logger', 'zap',
  ], { logName: 'etcd-tls' });
  await waitFor('the TLS etcd to be healthy', 15_000, async () => (await etcdctl(['endpoint', 'health'])).code === 0);
  const put = await etcdctl(['put', `${PREFIX}/config`, JSON.stringify({ Network: '10.244.0.0/16', Backend: { Type: 'vxlan' } })]);
  assert.is(put.code, 0, put.stderr);
});

test.after(async () => {
  await lab?.destroy();
});

test('with the right client certificate weftd leases a subnet over TLS', async () => {
  const a = agent(['--etcd-cafile', join(pki, 'ca.pem'), '--etcd-certfile', join(pki, 'client.pem'), '--etcd-keyfile', join(pki, 'client-key.pem')], 'weftd-good');
  const r = await waitReady(lab, a);
  assert.match(r.subnet, /^10\.244\.\d+\.0\/24$/);
  const got = await etcdctl(['get', '--prefix', `${PREFIX}/subnets/`, '--keys-only']);
  assert.match(got.stdout, new RegExp(r.subnet.replace('/', '-').replace(/\./g, '\\.')));
  await lab.stop(a.proc);
});

test('weft leases takes the same --etcd-* TLS flags (and WEFTD_ETCD_* variables) as weftd', async () => {
  const weft = WEFTD.replace(/weftd\.js$/, 'weft.js');
  const tls = ['--etcd-cafile', join(pki, 'ca.pem'), '--etcd-certfile', join(pki, 'client.pem'), '--etcd-keyfile', join(pki, 'client-key.pem')];
  const byFlags = await lab.execIn(lab.host(1).ns, process.execPath, [weft, 'leases', '--json', '--etcd-endpoints', ETCD_URL, ...tls], { timeoutMs: 20_000 });
  assert.is(byFlags.code, 0, byFlags.stderr);
  const rows = JSON.parse(byFlags.stdout) as Array<{ subnet: string; ttlSeconds: number | null }>;
  assert.ok(rows.length >= 1 && rows.every((r) => /^10\.244\.\d+\.0\/24$/.test(r.subnet) && typeof r.ttlSeconds === 'number'), byFlags.stdout);
  const env = { ...process.env, WEFTD_ETCD_ENDPOINTS: ETCD_URL, WEFTD_ETCD_CAFILE: join(pki, 'ca.pem'), WEFTD_ETCD_CERTFILE: join(pki, 'client.pem'), WEFTD_ETCD_KEYFILE: join(pki, 'client-key.pem') };
  const byEnv = await lab.execIn(lab.host(1).ns, process.execPath, [weft, 'leases'], { env, timeoutMs: 20_000 });
  assert.is(byEnv.code, 0, byEnv.stderr);
  assert.match(byEnv.stdout, /^SUBNET\s+PUBLIC IP/);
  const noCert = await lab.execIn(lab.host(1).ns, process.execPath, [weft, 'leases', '--etcd-endpoints', ETCD_URL, '--etcd-cafile', join(pki, 'ca.pem')], { timeoutMs: 20_000 });
  assert.is(noCert.code, 1);
  assert.match(noCert.stderr, /weft: cannot read leases from etcd at https:\/\/192\.0\.2\.250:2379: .*(certificate|TLS|handshake)/i);
  const half = await lab.execIn(lab.host(1).ns, process.execPath, [weft, 'leases', '--etcd-endpoints', ETCD_URL, '--etcd-certfile', join(pki, 'client.pem')], { timeoutMs: 20_000 });
  assert.is(half.code, 2);
  assert.match(half.stderr, /--etcd-certfile and --etcd-keyfile must be given together/);
});

test('without a client certificate weftd fails fast with a message about the certificate', async () => {
  const a = agent(['--etcd-cafile', join(pki, 'ca.pem')], 'weftd-nocert');
  const r = await exitOf(a, 15_000);
  console.log(`  no client cert -> exit ${r.code} after ${r.ms} ms`);
  assert.is(r.code, 2);
  assert.match(r.log, /weftd: .*(certificate|TLS|handshake)/i);
});

test('with a certificate from another CA weftd fails fast with a message about the certificate', async () => {
  const a = agent(['--etcd-cafile', join(pki, 'ca.pem'), '--etcd-certfile', join(pki, 'rogue-client.pem'), '--etcd-keyfile', join(pki, 'rogue-client-key.pem')], 'weftd-rogue');
  const r = await exitOf(a, 15_000);
  console.log(`  wrong client cert -> exit ${r.code} after ${r.ms} ms`);
  assert.is(r.code, 2);
  assert.match(r.log, /weftd: .*(certificate|TLS|handshake)/i);
});

test('not trusting the server\'s CA fails fast too', async () => {
  const a = agent(['--etcd-cafile', join(pki, 'rogue.pem'), '--etcd-certfile', join(pki, 'client.pem'), '--etcd-keyfile', join(pki, 'client-key.pem')], 'weftd-untrusted');
  const r = await exitOf(a, 15_000);
  assert.is(r.code, 2);
  assert.match(r.log, /weftd: .*(certificate|TLS|handshake)/i);
});

test('a certificate file that does not exist is a flag error naming the file', async () => {
  const a = agent(['--etcd-cafile', '/nonexistent/ca.pem'], 'weftd-missing');
  const r = await exitOf(a, 5000);
  assert.is(r.code, 2);
  assert.match(r.log, /--etcd-cafile \/nonexistent\/ca\.pem: ENOENT/);
});

test.run();
