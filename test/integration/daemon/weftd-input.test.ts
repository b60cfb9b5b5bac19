// Bad input to weftd: flags and network config. Each gets exit status 2 and
// a message naming the bad value; nothing is created.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Lab } from '../../../lab/lab.js';
import { putNetworkConfig, WEFTD } from '../../../lab/agent.js';

function weftd(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [WEFTD, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', ...env }, timeout: 10_000 });
}

test('--help lists the flags; --version prints the version; both exit 0', () => {
  const h = weftd(['--help']);
  assert.is(h.status, 0);
  assert.match(h.stdout, /^Usage: weftd \[flags\]/);
  assert.match(h.stdout, /--etcd-endpoints VALUE\s+comma-separated etcd client URLs \(default http:\/\/127\.0\.0\.1:2379\)/);
  const v = weftd(['--version']);
  assert.is(v.status, 0);
  assert.match(v.stdout, /^weftd \d+\.\d+\.\d+\n$/);
});

test('a bad flag or environment value exits 2 naming it, before touching anything', () => {
  for (const [args, env, re] of [
    [['--subnet-lease-ttl', '-5'], {}, /weftd: invalid --subnet-lease-ttl "-5": must be at least 5/],
    [['--etcd-endpoints', 'etcd:2379'], {}, /weftd: invalid --etcd-endpoints "etcd:2379": "etcd:2379" must use http:\/\/ or https:\/\//],
    [[], { WEFTD_PUBLIC_IP: '192.0.2' }, /weftd: invalid WEFTD_PUBLIC_IP= "192.0.2": must be an IPv4 address/],
    [['--frobnicate'], {}, /weftd: unknown flag --frobnicate/],
    [['--route-protocol', '3'], {}, /weftd: invalid --route-protocol "3": must be at least 5/],
  ] as Array<[string[], Record<string, string>, RegExp]>) {
    const r = weftd(args, env);
    assert.is(r.status, 2, `${args} ${JSON.stringify(env)}: ${r.stderr}`);
    assert.match(r.stderr, re);
  }
});

test('an invalid network config in etcd exits 2 naming the key and the value; a missing one is waited for', async () => {
  const lab = await Lab.create({ hosts: 1 });
  try {
    const h = lab.host(1);
    await putNetworkConfig(lab, { Network: '10.244.0.0/16', SubnetLen: 31 }, '/bad');
    const r = await lab.execIn(h.ns, process.execPath, [WEFTD, '--etcd-endpoints', lab.etcd!.labEndpoints[0]!, '--etcd-prefix', '/bad', '--subnet-file', join(h.dir, 's.env'), '--state-dir', join(h.dir, 'state')], { timeoutMs: 15_000 });
    assert.is(r.code, 2, r.stderr);
    assert.match(r.stderr, /weftd: \/bad\/config: SubnetLen must be at most 30, got 31/);
    let links = (await lab.ipJson(h.ns, ['link', 'show'])) as Array<{ ifname: string }>;
    assert.equal(links.map((l) => l.ifname).sort(), ['eth0', 'lo'], 'no device was created');

    // A backend this weftd has no plug-in for, or a bad field of a known one: exit 2 naming the key, the registered types.
    await putNetworkConfig(lab, { Network: '10.244.0.0/16', Backend: { Type: 'ipip' } }, '/hg');
    const hg = await lab.execIn(h.ns, process.execPath, [WEFTD, '--etcd-endpoints', lab.etcd!.labEndpoints[0]!, '--etcd-prefix', '/hg', '--subnet-file', join(h.dir, 's.env'), '--state-dir', join(h.dir, 'state')], { timeoutMs: 15_000 });
    assert.is(hg.code, 2, hg.stderr);
    assert.match(hg.stderr, /weftd: \/hg\/config: Backend\.Type "ipip" is not supported by this weftd \(registered: vxlan, udp, host-gw, wireguard\)/);
    // host-gw behind a NAT (a --public-ip that is not on the underlay): refused, as flannel does.
    await putNetworkConfig(lab, { Network: '10.244.0.0/16', Backend: { Type: 'host-gw' } }, '/hg');
    const nat = await lab.execIn(h.ns, process.execPath, [WEFTD, '--etcd-endpoints', lab.etcd!.labEndpoints[0]!, '--etcd-prefix', '/hg', '--public-ip', '203.0.113.5', '--iface', 'eth0', '--subnet-file', join(h.dir, 's.env'), '--state-dir', join(h.dir, 'state')], { timeoutMs: 15_000 });
    assert.is(nat.code, 2, nat.stderr);
    assert.match(nat.stderr, /the host-gw backend needs the public IP on the underlay: 203\.0\.113\.5 \(--public-ip\) is not an address of eth0 \(192\.0\.2\.11\)/);
    await putNetworkConfig(lab, { Network: '10.244.0.0/16', Backend: { Type: 'udp', Engine: 'fast' } }, '/hg');
    const eng = await lab.execIn(h.ns, process.execPath, [WEFTD, '--etcd-endpoints', lab.etcd!.labEndpoints[0]!, '--etcd-prefix', '/hg', '--subnet-file', join(h.dir, 's.env'), '--state-dir', join(h.dir, 'state')], { timeoutMs: 15_000 });
    assert.is(eng.code, 2, eng.stderr);
    assert.match(eng.stderr, /weftd: \/hg\/config: Backend\.Engine must be "native" or "dgram", got "fast"/);
    // Dual stack: IPv6-only is refused (flannel's etcd mode cannot run it); a backend without dual stack, and a host
    // with no IPv6 address on its underlay, are refused naming why.
    const run = async (config: unknown, ...extra: string[]) => {
      await putNetworkConfig(lab, config, '/v6');
      return lab.execIn(h.ns, process.execPath, [WEFTD, '--etcd-endpoints', lab.etcd!.labEndpoints[0]!, '--etcd-prefix', '/v6', '--subnet-file', join(h.dir, 's.env'), ...extra], { timeoutMs: 15_000 });
    };
    const only6 = await run({ Network: '10.244.0.0/16', EnableIPv4: false, EnableIPv6: true, IPv6Network: 'fd00::/48' });
    assert.is(only6.code, 2, only6.stderr);
    assert.match(only6.stderr, /weftd: \/v6\/config: EnableIPv4 false \(IPv6-only\) is not supported: flannel's etcd mode cannot run an IPv6-only network either/);
    const noV6 = await run({ Network: '10.244.0.0/16', EnableIPv6: true, IPv6Network: 'fd00::/48' });
    assert.is(noV6.code, 2, noV6.stderr);
    assert.match(noV6.stderr, /EnableIPv6 \(a dual-stack network\) needs an IPv6 address on the underlay eth0 \(it has no global one\); give --public-ipv6/);
    links = (await lab.ipJson(h.ns, ['link', 'show'])) as Array<{ ifname: string }>;
    assert.equal(links.map((l) => l.ifname).sort(), ['eth0', 'lo'], 'still no device');

    // No config yet: the agent waits (like flanneld) and starts once it appears.
    const p = lab.spawnIn(h.ns, process.execPath, [WEFTD, '--etcd-endpoints', lab.etcd!.labEndpoints[0]!, '--etcd-prefix', '/later', '--subnet-file', join(h.dir, 's.env'), '--state-dir', join(h.dir, 'state')], { logName: 'weftd-later' });
    // Wait for the agent to say why it waits (start-up takes longer on a loaded machine), then check it is still there.
    const notFound = /network config not found: etcd key \/later\/config does not exist/;
    const w0 = Date.now();
    while (!notFound.test(lab.readLog(p)) && p.exitCode === null && Date.now() - w0 < 10_000) await new Promise((res) => setTimeout(res, 50));
    assert.match(lab.readLog(p), notFound);
    await new Promise((res) => setTimeout(res, 500));
    assert.is(p.exitCode, null, 'still waiting');
    await putNetworkConfig(lab, { Network: '10.244.0.0/16' }, '/later');
    const t0 = Date.now();
    while (!lab.readLog(p).includes('"msg":"ready"') && Date.now() - t0 < 10_000) await new Promise((res) => setTimeout(res, 50));
    assert.ok(lab.readLog(p).includes('"msg":"ready"'), lab.readLog(p).slice(-1500));
    await lab.stop(p);
  } finally {
    await lab.destroy();
  }
});

test.run();
