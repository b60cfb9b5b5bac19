// Lease puts during a full reconcile of the VXLAN backend, against a real kernel in a throwaway
// namespace (root): N peers programmed, then 8 full reconciles (all in place: the every-10-s
// case), each with a one-lease apply every 25 ms while it runs. Prints the reconcile times,
// the applies' latency (p50/p99/max) and the event loop's worst delay. Run it under the
// shared lock; [dist] lets a build of another commit be measured the same way.
//   flock /work/.locks/integration node scripts/reconcile-puts.mjs [peers=10000] [dist=./dist]
import { execFileSync, spawnSync } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
const N = +(process.argv[2] ?? 10000);
const root = new URL(process.argv[3] ?? '../dist', process.argv[3] ? `file://${process.cwd()}/` : import.meta.url).pathname.replace(/\/$/, '');
const { NetlinkHandle } = await import(`${root}/netlink/index.js`);
const { VxlanBackend } = await import(`${root}/backend/vxlan/backend.js`);
const { createLogger } = await import(`${root}/daemon/logger.js`);
const { Prefix } = await import(`${root}/lib/ip.js`);
const NS = 'wtrqprd' + process.pid;
const sh = (...a) => execFileSync(a[0], a.slice(1), { encoding: 'utf8' });
process.on('exit', () => spawnSync('ip', ['netns', 'del', NS]));
sh('ip', 'netns', 'add', NS); sh('ip', '-n', NS, 'link', 'add', 'u0', 'type', 'veth', 'peer', 'name', 'u1'); sh('ip', '-n', NS, 'addr', 'add', '192.0.2.11/24', 'dev', 'u0'); sh('ip', '-n', NS, 'link', 'set', 'u0', 'up'); sh('ip', '-n', NS, 'link', 'set', 'u1', 'up');
const hex = (n) => n.toString(16).padStart(2, '0');
function peer(k) { const b = 128 + (k >> 8), c = k & 255, n = k + 1; return { subnet: Prefix.parse(`10.${b}.${c}.0/24`), attrs: { publicIP: `198.${18 + (n >> 16)}.${(n >> 8) & 255}.${n & 255}`, publicIPv6: null, backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: `02:b5:00:${hex((k >> 16) & 255)}:${hex((k >> 8) & 255)}:${hex(c)}` } }, key: `k${k}` }; }
const nl = NetlinkHandle.open({ netns: NS });
const u0 = nl.linkByName('u0');
const b = new VxlanBackend({ nl, log: createLogger('error'), network: Prefix.parse('10.128.0.0/9'), vni: 1, port: 8472, device: 'weft.1', macFor: () => '02:11:11:11:11:11', underlay: { index: u0.index, name: 'u0', v4: '192.0.2.11', mtu: 1500 }, routeProtocol: 87 });
await b.configure(peer(0));
let t = performance.now();
for (let i = 1; i <= N; i += 1000) await b.apply({ snapshot: false, events: Array.from({ length: Math.min(1000, N + 1 - i) }, (_, j) => ({ type: 'added', lease: peer(i + j) })) });
console.log(`${N} peers applied in 1000s: ${((performance.now() - t) / 1000).toFixed(2)} s`);
const lat = []; const rec = []; const eld = [];
let next = N + 1;
for (let rep = 0; rep < 8; rep++) {
  const h = monitorEventLoopDelay({ resolution: 5 }); h.enable();
  const t0 = performance.now();
  const r = b.resync(true).then(() => performance.now() - t0);
  // puts every 25 ms while the reconcile runs
  const puts = [];
  let done = false; r.then(() => { done = true; });
  while (!done) {
    await new Promise((res) => setTimeout(res, 25));
    if (done) break;
    const p0 = performance.now();
    puts.push(b.apply({ snapshot: false, events: [{ type: 'added', lease: peer(next++) }] }).then(() => performance.now() - p0));
  }
  rec.push(await r); lat.push(...(await Promise.all(puts)));
  h.disable(); eld.push(h.max / 1e6);
}
lat.sort((a, b) => a - b);
const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
console.log(`full reconcile at ${N} peers: ${rec.map((x) => x.toFixed(0)).join(', ')} ms`);
console.log(`puts during it (${lat.length}): p50 ${q(0.5).toFixed(1)} p99 ${q(0.99).toFixed(1)} max ${lat[lat.length - 1].toFixed(1)} ms`);
console.log(`event-loop delay max per reconcile: ${eld.map((x) => x.toFixed(0)).join(', ')} ms`);
nl.close();
