import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatSubnetEnv, readPreviousSubnet, readPreviousSubnets, writeSubnetEnv } from '../../../host/subnet-env.js';
import { masqRestoreInput, masqRules } from '../../../host/masquerade.js';
import { forwardChain, ForwardRules } from '../../../host/forward.js';
import { chainRestoreInput, type ExecResult } from '../../../host/iptables.js';
import { nullLogger } from '../../../lib/log.js';

test('subnet.env has flannel\'s four lines', () => {
  assert.is(
    formatSubnetEnv({ network: '10.244.0.0/16', subnet: '10.244.3.1/24', mtu: 1450, ipMasq: false }),
    'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.3.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n',
  );
});

test('dual stack: flannel\'s IPv6 pair after the IPv4 pair (flannel\'s Documentation/configuration.md example), read back as the previous subnets', () => {
  const text = formatSubnetEnv({ network: '10.42.0.0/16', subnet: '10.42.0.1/24', ipv6Network: '2001:cafe:42::/56', ipv6Subnet: '2001:cafe:42::1/64', mtu: 1450, ipMasq: true });
  assert.is(text, 'FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.0.1/24\nFLANNEL_IPV6_NETWORK=2001:cafe:42::/56\nFLANNEL_IPV6_SUBNET=2001:cafe:42::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n');
  const dir = mkdtempSync(join(tmpdir(), 'weft-env-'));
  try {
    const p = join(dir, 'subnet.env');
    writeFileSync(p, text);
    const prev = readPreviousSubnets(p);
    assert.is(prev.v4?.toString(), '10.42.0.0/24');
    assert.is(prev.v6?.toString(), '2001:cafe:42::/64');
    writeFileSync(p, 'FLANNEL_SUBNET=10.42.0.1/24\nFLANNEL_IPV6_SUBNET=10.1.1.1/24\n');
    assert.equal(Object.keys(readPreviousSubnets(p)), ['v4']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('subnet.env is written atomically and read back as the previous subnet', () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-env-'));
  try {
    const p = join(dir, 'run', 'flannel', 'subnet.env');
    writeSubnetEnv(p, { network: '10.244.0.0/16', subnet: '10.244.3.1/24', mtu: 1450, ipMasq: true });
    assert.match(readFileSync(p, 'utf8'), /FLANNEL_IPMASQ=true/);
    assert.equal(readdirSync(join(dir, 'run', 'flannel')), ['subnet.env']);
    assert.is(readPreviousSubnet(p)?.toString(), '10.244.3.0/24');
    writeFileSync(p, 'FLANNEL_SUBNET=garbage\n');
    assert.is(readPreviousSubnet(p), undefined);
    assert.is(readPreviousSubnet(join(dir, 'missing')), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('masquerade rules: overlay-to-overlay returns, overlay-to-outside masquerades', () => {
  const r = masqRules('10.244.0.0/16', '10.244.3.0/24').map((x) => x.join(' '));
  assert.is(r.length, 4);
  assert.match(r[0]!, /^-s 10\.244\.0\.0\/16 -d 10\.244\.0\.0\/16 (.* )?-j RETURN$/);
  assert.match(r[2]!, /^-s 10\.244\.0\.0\/16 ! -d 224\.0\.0\.0\/4 (.* )?-j MASQUERADE --random-fully$/);
  const input = masqRestoreInput('10.244.0.0/16', '10.244.3.0/24');
  assert.match(input, /^\*nat\n:WEFT-POSTRTG - \[0:0\]\n-F WEFT-POSTRTG\n/);
  assert.match(input, /COMMIT\n$/);
  // ip6tables: the same chain on the IPv6 network, multicast ff00::/8.
  const r6 = masqRules('fd00:10:244::/48', 'fd00:10:244:7::/64', 6).map((x) => x.join(' '));
  assert.match(r6[0]!, /^-s fd00:10:244::\/48 -d fd00:10:244::\/48 .*-j RETURN$/);
  assert.match(r6[2]!, /^-s fd00:10:244::\/48 ! -d ff00::\/8 .*-j MASQUERADE --random-fully$/);
  assert.match(input, /-A WEFT-POSTRTG -s 10\.244\.0\.0\/16 -d 10\.244\.0\.0\/16 -m comment --comment "weft masq" -j RETURN\n/);
});

test('forward chain: flannel\'s two ACCEPT rules for the network, in filter, rewritten in one COMMIT', () => {
  assert.is(
    chainRestoreInput(forwardChain('10.244.0.0/16')),
    '*filter\n:WEFT-FWD - [0:0]\n-F WEFT-FWD\n' +
      '-A WEFT-FWD -s 10.244.0.0/16 -m comment --comment "weft forward" -j ACCEPT\n' +
      '-A WEFT-FWD -d 10.244.0.0/16 -m comment --comment "weft forward" -j ACCEPT\nCOMMIT\n',
  );
});

test('forward rules kept: a missing jump is found with -C, the chain rewritten and the jump appended; the status says so', async () => {
  const calls: string[] = [];
  let jump = false;
  const run = async (cmd: string, args: readonly string[]): Promise<ExecResult> => {
    calls.push(`${cmd} ${args.join(' ')}`);
    const a = args.join(' ');
    if (a.includes('-C FORWARD')) return { code: jump ? 0 : 1, stdout: '', stderr: '' };
    if (a.includes('-A FORWARD')) jump = true;
    if (a.includes('-S WEFT-FWD')) return { code: 0, stdout: '-N WEFT-FWD\n-A WEFT-FWD -s x\n-A WEFT-FWD -d x\n', stderr: '' };
    return { code: 0, stdout: '', stderr: '' };
  };
  const f = new ForwardRules([forwardChain('10.244.0.0/16')], nullLogger, run);
  const s = await f.keep();
  assert.equal([s.ok, s.repairs], [true, 1]);
  assert.is(s.detail, 'repaired: no jump from FORWARD to WEFT-FWD');
  assert.ok(calls.includes('iptables -w 5 -t filter -A FORWARD -m comment --comment weft forward -j WEFT-FWD'), calls.join('\n'));
  assert.ok(calls.some((c) => c.startsWith('iptables-restore --noflush')));
  const again = await f.keep();
  assert.equal([again.detail, again.repairs], ['in place', 1]);
  const failing = new ForwardRules([forwardChain('10.244.0.0/16')], nullLogger, async () => ({ code: 4, stdout: '', stderr: 'iptables: permission denied' }));
  const bad = await failing.keep();
  assert.is(bad.ok, false);
  assert.match(bad.detail, /iptables-restore of WEFT-FWD failed: iptables: permission denied/);
});

test.run();
