// A full reconcile at 3000 peers against a real kernel (a throwaway namespace,
// iproute2 as the oracle): a lease change that arrives while it repairs gets
// its entries without waiting for the reconcile to end, and the kernel holds
// exactly what the newest leases call for afterwards (the reconcile, planned
// before the change, did not undo it). Needs root.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VxlanBackend } from '../../../../backend/vxlan/backend.js';
import { createLogger } from '../../../../daemon/logger.js';
import { registerNetns } from '../../../../lab/netns.js';
import { Prefix } from '../../../../lib/ip.js';
import { NetlinkHandle } from '../../../../netlink/index.js';
import type { Lease, LeaseBatch } from '../../../../subnet-manager/index.js';

const NS = `wtrq${randomBytes(3).toString('hex')}`;
const PEERS = 3000;
let nl: NetlinkHandle | undefined;

function cleanup(): void {
  nl?.close();
  spawnSync('ip', ['netns', 'del', NS]);
}
process.on('exit', cleanup);

const sh = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const json = (cmd: string, ...args: string[]): any[] => JSON.parse(sh(cmd, '-n', NS, '-j', ...args).trim() || '[]');
const hex = (n: number) => n.toString(16).padStart(2, '0');

/** Peer k: 10.<128 + k/256>.<k%256>.0/24, its own MAC and PublicIP (198.18.0.0/15, never reached: the entries are permanent). */
function peer(k: number, macTail = 0): Lease {
  const b = 128 + (k >> 8);
  const c = k & 255;
  const n = k + 1;
  return {
    subnet: Prefix.parse(`10.${b}.${c}.0/24`),
    attrs: { publicIP: `198.${18 + (n >> 16)}.${(n >> 8) & 255}.${n & 255}`, publicIPv6: null, backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: `02:b5:${hex(macTail)}:${hex((k >> 16) & 255)}:${hex((k >> 8) & 255)}:${hex(c)}` } },
    key: `/coreos.com/network/subnets/10.${b}.${c}.0-24`,
  };
}
const batch = (snapshot: boolean, add: Lease[], remove: Lease[] = []): LeaseBatch => ({
  snapshot, events: [...add.map((lease) => ({ type: 'added' as const, lease })), ...remove.map((lease) => ({ type: 'removed' as const, lease }))],
});

/** What the kernel holds on weft.1, by iproute2: one line per entry. */
function held(): string[] {
  return [
    ...json('ip', '-4', 'neigh', 'show', 'dev', 'weft.1').map((n) => `neigh ${n.dst} ${n.lladdr}`),
    ...json('bridge', 'fdb', 'show', 'dev', 'weft.1').filter((f) => f.dst).map((f) => `fdb ${f.mac} ${f.dst}`),
    ...json('ip', '-4', 'route', 'show', 'proto', '87').map((r) => `route ${r.dst}`),
  ].sort();
}
function wanted(ls: Lease[]): string[] {
  return ls.flatMap((l) => {
    const mac = (l.attrs.backendData as { VtepMAC: string }).VtepMAC;
    return [`neigh ${l.subnet.address(0)} ${mac}`, `fdb ${mac} ${l.attrs.publicIP}`, `route ${l.subnet.toString()}`];
  }).sort();
}

test.before(() => {
  registerNetns(NS);
  sh('ip', 'netns', 'add', NS);
  sh('ip', '-n', NS, 'link', 'add', 'u0', 'type', 'veth', 'peer', 'name', 'u1'); // (no dummy module on every kernel)
  sh('ip', '-n', NS, 'link', 'set', 'u1', 'up');
  sh('ip', '-n', NS, 'addr', 'add', '192.0.2.11/24', 'dev', 'u0');
  sh('ip', '-n', NS, 'link', 'set', 'u0', 'up');
  nl = NetlinkHandle.open({ netns: NS });
});
test.after(cleanup);

test(`a lease change during a full reconcile of ${PEERS} peers is applied at once and not undone`, async () => {
  const u0 = nl!.linkByName('u0')!;
  const o = { log: createLogger('silent'), network: Prefix.parse('10.128.0.0/9'), vni: 1, port: 8472, device: 'weft.1', macFor: () => '02:11:11:11:11:11', underlay: { index: u0.index, name: 'u0', v4: '192.0.2.11', mtu: 1500 }, routeProtocol: 87 };
  const peers = Array.from({ length: PEERS }, (_, k) => peer(k + 1));
  let change: Promise<void> | undefined;
  const order: string[] = [];
  // The backend's netlink, which queues the change at the reconcile's first batch of repairs.
  let armed = false;
  const hookBatch: NetlinkHandle['batch'] = (reqs) => {
    if (armed && !change) {
      // Host 1500 gets a new MAC, host 2000 leaves, a new host joins.
      change = b.apply(batch(false, [peer(1500, 0xaa), peer(PEERS + 1)], [peer(2000)])).then(() => { order.push('change'); });
    }
    return nl!.batch(reqs);
  };
  const hooked = new Proxy(nl!, {
    get(t, p) {
      if (p === 'batch') return hookBatch;
      const v: unknown = Reflect.get(t, p, t);
      return typeof v === 'function' ? v.bind(t) : v;
    },
  });
  const b = new VxlanBackend({ ...o, nl: hooked });
  await b.configure(peer(0));
  await b.apply(batch(true, peers));
  assert.equal(held(), wanted(peers), 'every peer programmed');
  // Every route lost: the full reconcile repairs 3000 of them.
  execFileSync('ip', ['-n', NS, '-batch', '-'], { input: peers.map((l) => `route del ${l.subnet.toString()} proto 87\n`).join(''), stdio: ['pipe', 'ignore', 'pipe'] });
  assert.is(json('ip', '-4', 'route', 'show', 'proto', '87').length, 0);
  armed = true;
  await b.resync(true).then(() => order.push('reconcile'));
  await change;
  assert.equal(order, ['change', 'reconcile'], 'the change did not wait for the reconcile to end');
  const now = [...peers.filter((l) => !['10.133.220.0/24', '10.135.208.0/24'].includes(l.subnet.toString())), peer(1500, 0xaa), peer(PEERS + 1)];
  assert.equal(held(), wanted(now), 'the kernel holds what the newest leases call for');
  const s = b.stats();
  assert.equal([s.peersKnown, s.peersProgrammed, s.kernelErrors], [now.length, now.length, 0]);
});

test.run();
