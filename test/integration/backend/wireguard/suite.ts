// weftd with the wireguard backend, end to end, for one device provider
// (userspace.test.ts: wireguard-go, which this machine has; kernel.test.ts:
// the kernel's, where it has WireGuard): 3 weft hosts × 2 containers and a
// 4th host set up by hand as flannel's wireguard backend would be. wg(8) and
// iproute2 are the oracles; tcpdump shows what the underlay carries.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { Lab, type LabContainer, type LabHost } from '../../../../lab/lab.js';
import { formatPingMatrix, pingMatrix, ping } from '../../../../lab/ping.js';
import { attachContainer, PREFIX, putNetworkConfig, restartAgent, startAgent, waitFor, waitReady, logRecords, type AgentReady, type LabAgent } from '../../../../lab/agent.js';
import { flannelAddPeers, startFlannelWireguardNode, wgDump, wgOn, type FlannelWgNode } from '../../../../lab/wireguard.js';
import { execOk, isPidAlive } from '../../../../lab/netns.js';
import { checkedTransfer } from '../../../../lab/transfer.js';

const DEV = 'weft-wg';
const PORT = 51820;
const NETWORK = '10.244.0.0/16';
const FLANNEL_SUBNET = '10.244.250.0/24';
const WEFT = fileURLToPath(new URL('../../../../cmd/weft.js', import.meta.url));

/** The IPv4/UDP packets of a pcap file (Ethernet link type), with their WireGuard message type. */
function readPcap(path: string): Array<{ src: string; dst: string; proto: number; sport: number; dport: number; wgType: number; wgReservedZero: boolean; len: number }> {
  const b = readFileSync(path);
  if (b.length < 24) return [];
  const le = b.readUInt32LE(0) === 0xa1b2c3d4;
  const u32 = (o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  if (u32(20) !== 1) throw new Error(`pcap link type ${u32(20)}, expected Ethernet`);
  const out = [];
  for (let off = 24; off + 16 <= b.length;) {
    const caplen = u32(off + 8);
    const p = b.subarray(off + 16, off + 16 + caplen);
    off += 16 + caplen;
    if (p.length < 14 || p.readUInt16BE(12) !== 0x0800) continue;
    const ip = p.subarray(14);
    const ihl = (ip[0]! & 0x0f) * 4;
    const ipStr = (o: number) => [...ip.subarray(o, o + 4)].join('.');
    const udp = ip.subarray(ihl);
    const wg = udp.subarray(8);
    out.push({
      src: ipStr(12), dst: ipStr(16), proto: ip[9]!, sport: udp.readUInt16BE(0), dport: udp.readUInt16BE(2),
      wgType: wg[0] ?? -1, wgReservedZero: wg.length >= 4 && wg[1] === 0 && wg[2] === 0 && wg[3] === 0, len: ip.readUInt16BE(2),
    });
  }
  return out;
}

export function wireguardSuite(impl: 'userspace' | 'kernel'): void {
  let lab: Lab;
  const agents = new Map<string, LabAgent>();
  const ready = new Map<string, AgentReady>();
  const containers: LabContainer[] = [];
  let flannel: FlannelWgNode;
  const on = (i: number, j = 1) => containers.filter((c) => c.host.index === i)[j - 1]!;
  const keyFile = (h: LabHost) => join(h.dir, 'wireguard.key');
  const weftHosts = () => lab.hosts.filter((h) => h.index <= 3);
  const lease = async (name: string) => JSON.parse((await lab.etcd!.client().get(`${PREFIX}/subnets/${ready.get(name)!.subnet.replace('/', '-')}`).string())!);

  async function allPairsPing(cs: LabContainer[]) {
    const pairs = await pingMatrix(lab, cs, { count: 2, intervalMs: 200, timeoutS: 3 });
    const bad = pairs.filter((p) => p.result.received !== p.result.sent || p.result.sent === 0);
    assert.is(bad.length, 0, `failed pairs:\n${formatPingMatrix(bad)}`);
    return pairs;
  }

  /** 20 probes 50 ms apart; the milliseconds until the first answered one, or null. */
  async function firstReply(from: LabContainer, to: LabContainer): Promise<number | null> {
    const r = await lab.execIn(from.ns, 'ping', ['-n', '-c', '40', '-i', '0.05', '-W', '1', to.ip], { timeoutMs: 15_000 });
    const m = /icmp_seq=(\d+) ttl/.exec(r.stdout);
    return m ? (Number(m[1]) - 1) * 50 : null;
  }

  test.before(async () => {
    lab = await Lab.create({ hosts: 4 });
    await putNetworkConfig(lab, { Network: NETWORK, SubnetLen: 24, SubnetMax: '10.244.199.0', Backend: { Type: 'wireguard' } });
    const started = weftHosts().map((h) => startAgent(lab, h, ['--wireguard-key-file', keyFile(h), '--wireguard-impl', impl]));
    for (const a of started) {
      agents.set(a.host.name, a);
      ready.set(a.host.name, await waitReady(lab, a));
    }
    for (const h of weftHosts()) for (let j = 0; j < 2; j++) containers.push(await attachContainer(lab, h, ready.get(h.name)!));
  });

  test.after(async () => {
    await lab?.destroy();
  });

  test(`[${impl}] device weft-wg: <subnet>.0/32, MTU underlay-80, the network routed through it; lease, key file and device agree (wg as the oracle)`, async () => {
    assert.is(new Set([...ready.values()].map((r) => r.subnet)).size, 3);
    for (const h of weftHosts()) {
      const r = ready.get(h.name)!;
      assert.is(r.mtu, 1420);
      const [link] = (await lab.ipJson(h.ns, ['-d', 'link', 'show', DEV])) as any[];
      assert.is(link.linkinfo.info_kind, impl === 'kernel' ? 'wireguard' : 'tun');
      assert.is(link.mtu, 1420);
      assert.ok(link.flags.includes('UP'), link.flags.join(','));
      const addrs = (await lab.ipJson(h.ns, ['-4', 'addr', 'show', 'dev', DEV])) as any[];
      assert.equal(addrs[0].addr_info.map((x: any) => `${x.local}/${x.prefixlen}`), [r.subnet.replace(/\/24$/, '/32')]);
      const routes = (await lab.ipJson(h.ns, ['route', 'show', 'dev', DEV])) as any[];
      assert.equal(routes.map((x) => `${x.dst} ${x.scope}`), [`${NETWORK} link`]);

      const st = statSync(keyFile(h));
      assert.is(st.mode & 0o777, 0o600);
      const priv = readFileSync(keyFile(h), 'utf8').trim();
      const pub = (await wgOn(lab, h, ['pubkey'], `${priv}\n`)).trim();
      // Exactly flannel's lease value.
      assert.equal(await lease(h.name), { PublicIP: h.underlayIp, PublicIPv6: null, BackendType: 'wireguard', BackendData: { PublicKey: pub, Port: PORT } });
      const d = await wgDump(lab, h);
      assert.is(d.privateKey, priv);
      assert.is(d.publicKey, pub);
      assert.is(d.listenPort, PORT);
      const want = weftHosts().filter((o) => o !== h).map((o) => `${o.underlayIp}:${PORT} ${ready.get(o.name)!.subnet} keepalive=null psk=null`).sort();
      assert.equal(d.peers.map((p) => `${p.endpoint} ${p.allowedIps.join(',')} keepalive=${p.keepalive} psk=${p.presharedKey}`).sort(), want);
    }
  });

  test(`[${impl}] every container pings every other container`, async () => {
    const pairs = await allPairsPing(containers);
    assert.is(pairs.length, 30);
    const d = await wgDump(lab, lab.host(1));
    for (const p of d.peers) {
      assert.ok(p.latestHandshake > 0, `no handshake with ${p.endpoint}`);
      assert.ok(p.rxBytes > 0 && p.txBytes > 0, JSON.stringify(p));
    }
  });

  test(`[${impl}] 10 MB arrive with the same sha256; the underlay between the two hosts carries only WireGuard on ${PORT}, never the plaintext`, async () => {
    const [from, to] = [on(1, 1), on(2, 1)];
    const [h1, h2] = [lab.host(1), lab.host(2)];
    const marker = `WEFT-PLAINTEXT-MARKER-${Math.random().toString(36).slice(2, 10)}`;
    const pcap = join(h1.dir, 'underlay.pcap');
    const dump = lab.spawnIn(h1.ns, 'tcpdump', ['-i', 'eth0', '-n', '-U', '-s', '0', '-w', pcap, `ip and host ${h1.underlayIp} and host ${h2.underlayIp}`], { logName: `tcpdump-${impl}` });
    await waitFor('tcpdump to listen', 5000, () => /listening on/.test(lab.readLog(dump)));
    // 10 MB: the marker text repeated (so plaintext would be easy to find), then random bytes.
    const t = await checkedTransfer(lab, from, to, { bytes: 10 << 20, prefix: marker });
    assert.is(t.bytes, 10 << 20);
    assert.equal([t.receivedBytes, t.receivedSha], [t.bytes, t.sentSha]);
    // And a UDP datagram that is nothing but the marker, heard on the other side.
    const listener = lab.spawnIn(to.ns, process.execPath, ['-e', `
      const s = require('dgram').createSocket('udp4');
      s.on('message', (m) => console.log('GOT ' + m.toString()));
      s.bind(9999, '${to.ip}', () => console.log('LISTENING'));
      setTimeout(() => process.exit(0), 20000);`], { logName: `wg-udp-listener-${impl}` });
    await waitFor('the UDP listener', 5000, () => lab.readLog(listener).includes('LISTENING'));
    await lab.execIn(from.ns, process.execPath, ['-e', `
      const s = require('dgram').createSocket('udp4');
      s.send(Buffer.from(${JSON.stringify(marker)}), 9999, '${to.ip}', () => s.close());`]);
    await waitFor('the marker datagram', 5000, () => lab.readLog(listener).includes(`GOT ${marker}`));
    await new Promise((r) => setTimeout(r, 300));
    await lab.stop(dump, { signal: 'SIGINT' });
    await lab.stop(listener);
    const pkts = readPcap(pcap);
    const bytes = pkts.reduce((n, p) => n + p.len, 0);
    assert.ok(bytes > 10 << 20, `captured ${bytes} bytes in ${pkts.length} packets: the transfer crossed this link`);
    const other = pkts.filter((p) => p.proto !== 17 || p.sport !== PORT || p.dport !== PORT || p.wgType < 1 || p.wgType > 4 || !p.wgReservedZero);
    assert.is(other.length, 0, `not WireGuard on ${PORT}: ${JSON.stringify(other.slice(0, 3))}`);
    assert.ok(pkts.some((p) => p.wgType === 4), 'transport data messages');
    assert.is(readFileSync(pcap).indexOf(marker), -1, 'the marker never appears on the underlay');
    console.log(`  [${impl}] underlay h1<->h2: ${pkts.length} packets, ${(bytes / 1e6).toFixed(1)} MB, all WireGuard (types ${[...new Set(pkts.map((p) => p.wgType))].sort().join(',')}), no plaintext`);
  });

  test(`[${impl}] interop: a host set up by hand as flannel's wireguard backend (lease via etcdctl) and the weft hosts reach each other`, async () => {
    flannel = await startFlannelWireguardNode(lab, lab.host(4), { subnet: FLANNEL_SUBNET, network: NETWORK, impl });
    const added = await flannelAddPeers(lab, flannel);
    assert.is(added.length, 3, 'flannel reads the three weft leases as wireguard leases');
    for (const h of weftHosts()) {
      await waitFor(`${h.name} to add the flannel node`, 5000, async () => (await wgDump(lab, h)).peers.some((p) => p.publicKey === flannel.publicKey));
      const p = (await wgDump(lab, h)).peers.find((x) => x.publicKey === flannel.publicKey)!;
      assert.equal([p.endpoint, p.allowedIps], [`${lab.host(4).underlayIp}:${PORT}`, [FLANNEL_SUBNET]]);
    }
    const fc = flannel.container!;
    await allPairsPing([on(1), on(2), on(3), fc]);
  });

  test(`[${impl}] weft status: each peer's last handshake and bytes, from the device`, async () => {
    const h = lab.host(1);
    const r = await lab.execIn(h.ns, process.execPath, [WEFT, 'status', '--json', '--etcd-endpoints', lab.etcd!.labEndpoints.join(','), '--subnet-file', agents.get('h1')!.subnetFile], { runDir: h.runDir, timeoutMs: 20_000 });
    assert.is(r.code, 0, r.stdout + r.stderr);
    const s = JSON.parse(r.stdout);
    assert.is(s.node.wireguard.publicKey, (await lease('h1')).BackendData.PublicKey);
    assert.is(s.node.wireguard.listenPort, PORT);
    assert.is(s.peers.length, 3);
    for (const p of s.peers) {
      assert.ok(p.wireguard, `no WireGuard peer for ${p.subnet}`);
      assert.ok(p.wireguard.lastHandshakeSecondsAgo !== null && p.wireguard.lastHandshakeSecondsAgo < 180, JSON.stringify(p.wireguard));
      assert.ok(p.wireguard.rxBytes > 0 && p.wireguard.txBytes > 0, JSON.stringify(p.wireguard));
    }
    const text = await lab.execIn(h.ns, process.execPath, [WEFT, 'status', '--etcd-endpoints', lab.etcd!.labEndpoints.join(','), '--subnet-file', agents.get('h1')!.subnetFile], { runDir: h.runDir, timeoutMs: 20_000 });
    assert.match(text.stdout, /HANDSHAKE\s+RX\s+TX/);
    assert.match(text.stdout, /\d+ s ago\s+[\d.]+ (B|KiB|MiB)\s+[\d.]+ (B|KiB|MiB)/);
  });

  test(`[${impl}] the device lost (${impl === 'userspace' ? 'wireguard-go killed' : 'deleted by hand'}): weftd makes it again with every peer, pinging again within 5 s`, async () => {
    const h = lab.host(1);
    if (impl === 'userspace') {
      const inNs = (await execOk('ip', ['netns', 'pids', h.ns])).trim().split('\n').map(Number);
      const [pid] = inNs.filter((p) => { try { return readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'wireguard-go'; } catch { return false; } });
      process.kill(pid!, 'SIGKILL');
    } else {
      assert.is((await lab.execIn(h.ns, 'ip', ['link', 'del', DEV])).code, 0);
    }
    const ms = await waitFor('pings from h1 to h2 again', 5000, async () => (await ping(on(1).ns, on(2).ip, { count: 1, timeoutS: 1 })).received === 1);
    console.log(`  [${impl}] device lost -> pinging again after ${ms} ms`);
    assert.ok(logRecords(lab, agents.get('h1')!).some((r) => r.msg === 'WireGuard device gone; recreating it with all peers'));
    assert.is((await wgDump(lab, h)).peers.length, 3);
    await allPairsPing([on(1), on(2), on(3), flannel.container!]);
  });

  test(`[${impl}] kill -9 and restart: the same public key, pings both ways again within 2 s of ready`, async () => {
    const a = agents.get('h2')!;
    const h = a.host;
    const pubBefore = (await wgDump(lab, h)).publicKey;
    const inNs = (await execOk('ip', ['netns', 'pids', h.ns])).trim().split('\n').map(Number);
    const wgGo = inNs.filter((pid) => { try { return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'wireguard-go'; } catch { return false; } });
    process.kill(a.proc.pid!, 'SIGKILL');
    await a.proc.exited;
    if (impl === 'userspace') {
      // Only weftd was killed: wireguard-go goes by itself (parent-death signal), and its device with it.
      assert.is(wgGo.length, 1, `one wireguard-go on ${h.name}`);
      await waitFor('wireguard-go to follow weftd', 3000, () => !isPidAlive(wgGo[0]!));
      assert.is.not((await lab.execIn(h.ns, 'ip', ['link', 'show', DEV])).code, 0, 'the device is gone with wireguard-go');
    } else {
      assert.is((await lab.execIn(h.ns, 'ip', ['link', 'show', DEV])).code, 0, 'the kernel device outlives weftd');
    }
    const t0 = Date.now();
    await restartAgent(lab, a);
    const r = await waitReady(lab, a);
    const readyAfter = Date.now() - t0;
    assert.is(r.subnet, ready.get('h2')!.subnet);
    const [in1, out1] = await Promise.all([firstReply(on(1), on(2)), firstReply(on(2), on(3))]);
    assert.ok(in1 !== null && in1 <= 2000, `h1 -> h2: first reply after ${in1} ms`);
    assert.ok(out1 !== null && out1 <= 2000, `h2 -> h3: first reply after ${out1} ms`);
    console.log(`  [${impl}] kill -9 -> restart -> ready ${readyAfter} ms; first replies ${in1} ms (h1 -> h2) and ${out1} ms (h2 -> h3) after ready`);
    assert.is((await wgDump(lab, h)).publicKey, pubBefore);
    assert.is((await lease('h2')).BackendData.PublicKey, pubBefore);
    assert.is((await wgDump(lab, h)).peers.length, 3);
    await allPairsPing([on(1), on(2), on(3), flannel.container!]);
  });

  test(`[${impl}] a host leaves: its lease deleted, its peer gone from every device within 2 s`, async () => {
    const a = agents.get('h3')!;
    const pub = (await lease('h3')).BackendData.PublicKey as string;
    await lab.stop(a.proc, { signal: 'SIGTERM', graceMs: 5000 });
    assert.is(a.proc.exitCode, 0, 'SIGTERM is a clean stop');
    const left = await lab.execIn(a.host.ns, 'ip', ['link', 'show', DEV]);
    if (impl === 'userspace') assert.is.not(left.code, 0, 'wireguard-go stopped, its device gone');
    else assert.is(left.code, 0, 'the kernel device stays');
    await lab.etcd!.client().delete().key(`${PREFIX}/subnets/${ready.get('h3')!.subnet.replace('/', '-')}`);
    const t0 = Date.now();
    for (const name of ['h1', 'h2']) {
      await waitFor(`${name} to drop h3's peer`, 2000 - (Date.now() - t0), async () => !(await wgDump(lab, lab.host(name))).peers.some((p) => p.publicKey === pub));
    }
    console.log(`  [${impl}] lease deleted -> peer gone from h1 and h2 after ${Date.now() - t0} ms`);
    assert.ok(logRecords(lab, agents.get('h1')!).some((r) => r.msg === 'peer removed' && r.publicKey === pub));
    await allPairsPing([on(1), on(2), flannel.container!]);
  });

  test(`[${impl}] a key file others may read, or one holding garbage: weftd exits 2 naming it`, async () => {
    const h = lab.host(3);
    const run = async (contents: string, mode: number) => {
      const f = join(h.dir, `bad-${mode.toString(8)}.key`);
      writeFileSync(f, contents);
      chmodSync(f, mode);
      const p = startAgent(lab, h, ['--wireguard-key-file', f, '--wireguard-impl', impl]);
      await p.proc.exited;
      return { code: p.proc.exitCode, log: lab.readLog(p.proc), f };
    };
    const key = readFileSync(keyFile(h), 'utf8');
    const loose = await run(key, 0o644);
    assert.is(loose.code, 2);
    assert.match(loose.log, new RegExp(`weftd: .*--wireguard-key-file ${loose.f}: mode 0644`));
    assert.not.ok(loose.log.includes(key.trim()), 'the key is not in the log');
    const junk = await run('hello\n', 0o600);
    assert.is(junk.code, 2);
    assert.match(junk.log, new RegExp(`--wireguard-key-file ${junk.f}: not a WireGuard private key`));
  });
}

export { test };
