// `weft lab`, the README's first command: a whole cluster, a ping matrix,
// a throughput line, and nothing left behind; --keep and `weft lab down`;
// and a clear list of what is missing when it cannot run.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WEFTD } from '../../../lab/agent.js';
import { preflight } from '../../../lab/demo.js';

const WEFT = WEFTD.replace(/weftd\.js$/, 'weft.js');
const stateDir = mkdtempSync(join(tmpdir(), 'weft-lab-state-'));
const env = { ...process.env, WEFT_LAB_STATE_DIR: stateDir };

function labNamespaces(): string[] {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return r.stdout.split('\n').map((l) => l.split(' ')[0]!).filter((n) => /^wt[a-z0-9]{5}-/.test(n));
}

function weft(args: string[], extraEnv: Record<string, string> = {}, timeout = 120_000) {
  return spawnSync(process.execPath, [WEFT, ...args], { encoding: 'utf8', env: { ...env, ...extraEnv }, timeout });
}

test.after(() => {
  weft(['lab', 'down']);
  rmSync(stateDir, { recursive: true, force: true });
});

test('weft lab: every pair reachable, a throughput line, a summary, and no namespace or process left', () => {
  const r = weft(['lab', '--hosts', '2', '--containers', '1']);
  assert.is(r.status, 0, r.stdout + r.stderr);
  const id = /^ {6}lab (wt[a-z0-9]{5}): namespaces/m.exec(r.stdout)?.[1];
  assert.ok(id, r.stdout);
  assert.match(r.stdout, /\[1\/6\] creating the lab/);
  assert.match(r.stdout, /Ping matrix/);
  assert.match(r.stdout, /Throughput \(one TCP stream, 2 s\): underlay [\d.]+ Gbit\/s, overlay [\d.]+ Gbit\/s/);
  assert.match(r.stdout, /Summary: 2 hosts, 2 containers, backend vxlan: 2\/2 pairs reachable/);
  assert.match(r.stdout, /\[6\/6\] removing the lab .* done/);
  assert.equal(labNamespaces().filter((n) => n.startsWith(`${id}-`)), []);
  const procs = spawnSync('pgrep', ['-f', `weftd.js.*weft-lab-${id}-`], { encoding: 'utf8' }).stdout.trim();
  assert.is(procs, '', 'no weftd of this lab left');
});

test('weft lab --keep leaves the lab up after the CLI exits; weft lab down removes it', () => {
  const r = weft(['lab', '--hosts', '2', '--containers', '1', '--backend', 'udp', '--keep']);
  assert.is(r.status, 0, r.stdout + r.stderr);
  const id = /The lab (wt[a-z0-9]{5}) is left up/.exec(r.stdout)?.[1];
  assert.ok(id, r.stdout);
  assert.match(r.stdout, /ip route show dev weft-tun/);
  const kept = labNamespaces().filter((n) => n.startsWith(`${id}-`));
  assert.ok(kept.includes(`${id}-h1c1`) && kept.includes(`${id}-h2c1`), kept.join(' '));
  // Still working with the CLI gone: h1c1 pings h2c1 through the udp forwarder.
  const dst = JSON.parse(spawnSync('ip', ['-n', `${id}-h2c1`, '-j', '-4', 'addr', 'show', 'eth0'], { encoding: 'utf8' }).stdout)[0].addr_info[0].local;
  const p = spawnSync('ip', ['netns', 'exec', `${id}-h1c1`, 'ping', '-c', '2', '-i', '0.2', '-W', '1', dst], { encoding: 'utf8' });
  assert.is(p.status, 0, p.stdout);
  assert.ok(existsSync(join(stateDir, `${id}.json`)));
  const down = weft(['lab', 'down']);
  assert.is(down.status, 0, down.stderr);
  assert.match(down.stdout, new RegExp(`removed lab ${id} \\(\\d+ namespaces\\)`));
  assert.equal(labNamespaces().filter((n) => n.startsWith(`${id}-`)), []);
  assert.equal(readdirSync(stateDir), []);
});

test('weft lab --topology two-segments: VXLAN with DirectRouting reaches every pair across the router', () => {
  const r = weft(['lab', '--hosts', '4', '--containers', '1', '--topology', 'two-segments', '--direct-routing']);
  assert.is(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /creating the lab: two underlay segments and a router/);
  assert.match(r.stdout, /h3 {2}underlay 198\.51\.100\.13 \(segment b\)/);
  assert.match(r.stdout, /Summary: 4 hosts, 4 containers, backend vxlan with DirectRouting, two segments: 12\/12 pairs reachable/);
  const bad = weft(['lab', '--backend', 'udp', '--direct-routing']);
  assert.is(bad.status, 2, bad.stderr);
  assert.match(bad.stderr, /--direct-routing is a vxlan option, not one of --backend udp/);
});

test('not root: weft lab says so, how to fix it, and creates nothing', () => {
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, WEFT, 'lab'], { encoding: 'utf8', env, timeout: 30_000 });
  assert.is(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /weft lab cannot start; missing:\n {2}root privileges \(network namespaces, netlink\): run it as root/);
  assert.match(r.stderr, /Nothing was created\./);
  assert.not.match(r.stdout, /creating the lab/, 'it stopped before making anything');
});

test('missing tools are each named with the package that provides them', () => {
  const m = preflight({ uid: 0, path: '/nonexistent', cniDir: '/nonexistent/cni' });
  const lines = m.map((x) => `${x.what}: ${x.how}`);
  assert.ok(lines.includes('etcd (not on PATH): apt-get install etcd-server'), lines.join('\n'));
  assert.ok(lines.includes('iperf3 (not on PATH): apt-get install iperf3'), lines.join('\n'));
  assert.ok(lines.includes('CNI plugin /nonexistent/cni/bridge: apt-get install containernetworking-plugins'), lines.join('\n'));
  assert.equal(preflight({ uid: 0, path: process.env.PATH ?? '', cniDir: '/usr/lib/cni' }), [], 'this machine has everything');
});

test.run();
