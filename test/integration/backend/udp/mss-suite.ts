// Issue 10 end to end: two udp hosts with offloads on (the native engine's
// defaults), one container each. For MSS 536, 900, 1007 and 1400: iperf3 -M in
// both directions at once, then a sha256-checked 4 MiB transfer each way with
// that MSS. Small MSS is what crashed the receiving weftd (a flow of small
// segments merged across GRO messages overflowed the writer's iovec array).
// Then SIGTERM: every weftd exits 0. udp-offload-mss-asan.test.ts runs the same
// with the ASan+UBSan addon (WEFT_NATIVE_ASAN=1) and fails on any report.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { Lab, type LabContainer } from '../../../../lab/lab.js';
import { attachContainer, forwarderStats, putNetworkConfig, sanitizerReport, startAgents, waitFor, type LabAgent } from '../../../../lab/agent.js';

const MSS = [536, 900, 1007, 1400];

export function udpMssSuite(o: { asan: boolean; seconds: number }): void {
  if (o.asan) process.env.WEFT_NATIVE_ASAN = '1';
  let lab: Lab;
  const agents: LabAgent[] = [];
  const cs: LabContainer[] = [];
  let port = 7300;

  const alive = () => {
    for (const a of agents) {
      assert.is(a.proc.exitCode ?? a.proc.signalCode, null, `weftd on ${a.host.name} died:\n${lab.readLog(a.proc).slice(-3000)}`);
    }
  };

  /** `mb` MiB of random bytes from one container to another over TCP with TCP_MAXSEG = mss on both ends; the sha256 must match. */
  async function shaTransfer(from: LabContainer, to: LabContainer, mss: number, mb: number): Promise<void> {
    const p = port++;
    const sink = lab.spawnIn(to.ns, 'python3', ['-c', `
import hashlib, socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, ${mss}); s.bind(('${to.ip}', ${p})); s.listen(1)
print('LISTENING', flush=True); s.settimeout(60)
c, _ = s.accept(); h = hashlib.sha256(); n = 0
while True:
    d = c.recv(1 << 20)
    if not d: break
    h.update(d); n += len(d)
print('SHA', n, h.hexdigest(), flush=True)`], { logName: `sha-sink-${to.name}-${p}` });
    await waitFor(`the sink on ${to.name}`, 5000, () => lab.readLog(sink).includes('LISTENING'));
    const send = await lab.execIn(from.ns, 'python3', ['-c', `
import hashlib, os, socket
data = os.urandom(${mb} << 20); print('SHA', len(data), hashlib.sha256(data).hexdigest(), flush=True)
s = socket.socket(); s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, ${mss}); s.settimeout(60)
s.connect(('${to.ip}', ${p})); s.sendall(data); s.shutdown(socket.SHUT_WR); s.recv(1); s.close()`], { timeoutMs: 90_000 });
    assert.is(send.code, 0, `${from.name} -> ${to.name} MSS ${mss}: ${send.stderr}`);
    const want = /SHA (\d+) ([0-9a-f]{64})/.exec(send.stdout)!;
    await waitFor(`the sink on ${to.name} to report`, 20_000, () => lab.readLog(sink).includes('SHA '));
    assert.match(lab.readLog(sink), new RegExp(`SHA ${want[1]} ${want[2]}`), `${from.name} -> ${to.name} MSS ${mss}: data differs`);
    await lab.stop(sink);
  }

  test.before(async () => {
    lab = await Lab.create({ hosts: 2 });
    await putNetworkConfig(lab, { Network: '10.244.0.0/16', SubnetLen: 24, Backend: { Type: 'udp', Engine: 'native' } });
    for (const u of await startAgents(lab, () => ['--log-level', 'info'])) {
      agents.push(u.agent);
      cs.push(await attachContainer(lab, u.host, u.ready));
    }
  });

  test.after(async () => {
    await lab?.destroy();
  });

  if (o.asan) {
    test('weftd runs with the ASan addon', () => {
      for (const a of agents) {
        const maps = readFileSync(`/proc/${a.proc.pid}/maps`, 'utf8');
        assert.ok(maps.includes('build-asan/weft_native.node'), `${a.host.name} has not loaded the ASan addon`);
        assert.ok(maps.includes('libasan'), `${a.host.name} has no libasan`);
      }
    });
  }

  for (const mss of MSS) {
    test(`MSS ${mss}: iperf3 -M ${mss} --bidir and 4 MiB sha256-checked each way through udp with offloads; both weftd live on`, async () => {
      const [c1, c2] = [cs[0]!, cs[1]!];
      const srv = lab.spawnIn(c2.ns, 'iperf3', ['-s', '-1', '-B', c2.ip, '--forceflush'], { logName: `iperf3-mss-${mss}` });
      await waitFor('iperf3 server', 5000, () => lab.readLog(srv).includes('listening'));
      const r = await lab.execIn(c1.ns, 'iperf3', ['-c', c2.ip, '-M', String(mss), '--bidir', '-t', String(o.seconds), '-J'], { timeoutMs: (o.seconds + 30) * 1000 });
      await lab.stop(srv);
      alive();
      assert.is(r.code, 0, r.stdout.slice(-2000) + r.stderr);
      const j = JSON.parse(r.stdout);
      const up = j.end.sum_received.bits_per_second / 1e6;
      const down = j.end.sum_received_bidir_reverse.bits_per_second / 1e6;
      console.log(`  MSS ${mss}${o.asan ? ' (ASan)' : ''}: ${up.toFixed(0)} Mbit/s h1->h2, ${down.toFixed(0)} Mbit/s h2->h1`);
      assert.ok(j.end.sum_received.bytes > 1 << 20 && j.end.sum_received_bidir_reverse.bytes > 1 << 20, 'both ways carried data');
      await Promise.all([shaTransfer(c1, c2, mss, 4), shaTransfer(c2, c1, mss, 4)]);
      alive();
    });
  }

  test('the receive side merged small segments, dropped nothing as malformed; SIGTERM: every weftd exits 0, no sanitizer report', async () => {
    for (const a of agents) {
      const f = await forwarderStats(lab, a);
      assert.ok(f.offload.coalescedWrites > 0 && f.offload.groReceives > 0, JSON.stringify(f.offload));
      assert.is(f.drops.malformed + f.drops.tun_write_error, 0, JSON.stringify(f.drops));
    }
    for (const a of agents) {
      await lab.stop(a.proc, { signal: 'SIGTERM', graceMs: o.asan ? 15_000 : 5000 });
      const log = lab.readLog(a.proc);
      assert.is(sanitizerReport(log), undefined, `${a.host.name}: ${sanitizerReport(log)}`);
      assert.is(a.proc.exitCode, 0, `weftd on ${a.host.name} exited ${a.proc.exitCode ?? a.proc.signalCode}:\n${log.slice(-3000)}`);
    }
  });
}

export { test };
