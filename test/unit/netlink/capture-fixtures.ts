// Captures real rtnetlink answers for the decoder property tests (dumps.json beside this
// file): a throwaway namespace with what weft's hosts hold (veth underlay with IPv4 and IPv6,
// vxlan with neighbours, FDB entries and onlink routes, a bridge with a port, a persistent
// TUN, routes with metrics and in other tables), dumped through NetlinkHandle, plus the
// monitor's notifications while entries come and go. Each datagram is stored as recv()
// returned it. Run by hand as root after `npm run build`:
//   node dist/test/unit/netlink/capture-fixtures.js
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { addNetns, delNetns, execOk } from '../../../lab/netns.js';
import { NetlinkHandle, NetlinkMonitor } from '../../../netlink/index.js';
import { openRouteSocket, type NetlinkSocket } from '../../../netlink/socket.js';
import { RTMGRP_IPV4_ROUTE, RTMGRP_LINK, RTMGRP_NEIGH } from '../../../netlink/constants.js';

const OUT = fileURLToPath(new URL('../../../../test/unit/netlink/fixtures/dumps.json', import.meta.url));
const ns = `wt${randomBytes(3).toString('hex').slice(0, 5)}-nlcap`;

function recording(sock: NetlinkSocket, into: string[]): NetlinkSocket {
  return { portId: sock.portId, send: (m) => sock.send(m), close: () => sock.close(), recv: (t) => { const d = sock.recv(t); if (d) into.push(d.toString('hex')); return d; } };
}

const setup = [
  'link set lo up',
  'link add u0 type veth peer name u1',
  'addr add 192.0.2.11/24 dev u0', 'addr add 2001:db8::11/64 dev u0', 'link set u0 up', 'link set u1 up',
  'link add weft.1 address 02:42:0a:f4:01:00 mtu 1450 type vxlan id 1 dstport 8472 nolearning local 192.0.2.11 dev u0',
  'addr add 10.244.1.0/32 dev weft.1', 'link set weft.1 up',
  'link add weft-v6.1 type vxlan id 1 dstport 8472 nolearning local 2001:db8::11 dev u0', 'link set weft-v6.1 up',
  'addr add fd00:0:0:1::/128 dev weft-v6.1',
  'link add weft0 type bridge', 'addr add 10.244.1.1/24 dev weft0', 'link set weft0 up',
  'link add ve0 type veth peer name ve1', 'link set ve0 master weft0', 'link set ve0 up',
  'tuntap add weft-tun mode tun', 'addr add 10.245.1.0/32 dev weft-tun', 'link set weft-tun up',
  'route add 10.245.0.0/16 dev weft-tun',
  'neigh replace 10.244.3.0 lladdr c6:d2:32:6f:8f:44 dev weft.1 nud permanent',
  'neigh replace 10.244.4.0 lladdr c6:d2:32:6f:8f:45 dev weft.1 nud permanent',
  'neigh replace fd00:0:0:3:: lladdr c6:d2:32:6f:8f:46 dev weft-v6.1 nud permanent',
  'route replace 10.244.3.0/24 via 10.244.3.0 dev weft.1 onlink',
  'route replace 10.244.4.0/24 via 10.244.4.0 dev weft.1 onlink mtu 1400',
  'route replace fd00:0:0:3::/64 via fd00:0:0:3:: dev weft-v6.1 onlink',
  'route add default via 192.0.2.1 dev u0 metric 100',
  'route add 198.51.100.0/24 via 192.0.2.1 dev u0 table 100 proto static',
  'route add blackhole 203.0.113.0/24',
];
const fdb = [
  'fdb append c6:d2:32:6f:8f:44 dev weft.1 dst 192.0.2.12 self permanent',
  'fdb append c6:d2:32:6f:8f:45 dev weft.1 dst 192.0.2.13 self permanent',
  'fdb append 00:00:00:00:00:00 dev weft.1 dst 192.0.2.14 self permanent',
  'fdb append c6:d2:32:6f:8f:46 dev weft-v6.1 dst 2001:db8::12 self permanent',
  'fdb add 02:00:00:00:00:01 dev ve0 master static',
];

await addNetns(ns);
try {
  for (const c of setup) await execOk('ip', ['-n', ns, ...c.split(' ')]);
  for (const c of fdb) await execOk('bridge', ['-n', ns, ...c.split(' ')]);
  const out: Record<string, string[]> = {};
  const run = (name: string, fn: (h: NetlinkHandle) => unknown) => {
    out[name] = [];
    const h = new NetlinkHandle(recording(openRouteSocket({ netns: ns }), out[name]!), { netns: `/run/netns/${ns}` });
    try { fn(h); } finally { h.close(); }
  };
  run('linkDump', (h) => h.linkList());
  run('linkGetVxlan', (h) => h.linkByName('weft.1'));
  run('linkGetTun', (h) => h.linkByName('weft-tun'));
  run('addrDump', (h) => h.addrList());
  run('routeDump', (h) => h.routeList({ table: 0 }));
  run('neighDump', (h) => h.neighList());
  run('fdbDump', (h) => h.fdbList());
  run('linkGetMissing', (h) => h.linkByName('nope0'));
  // Notifications: a monitor open while entries come and go.
  const notes: string[] = [];
  const mon = new NetlinkMonitor(recording(openRouteSocket({ netns: ns, groups: RTMGRP_LINK | RTMGRP_NEIGH | RTMGRP_IPV4_ROUTE }), notes));
  for (const c of ['route del 10.244.3.0/24 dev weft.1', 'neigh del 10.244.4.0 dev weft.1', 'link set ve0 down', 'addr add 10.244.1.77/32 dev weft0',
    'route replace 10.244.3.0/24 via 10.244.3.0 dev weft.1 onlink', 'link del ve0', 'link add br9 type bridge']) await execOk('ip', ['-n', ns, ...c.split(' ')]);
  await execOk('bridge', ['-n', ns, 'fdb', 'del', 'c6:d2:32:6f:8f:45', 'dev', 'weft.1', 'dst', '192.0.2.13', 'self']);
  mon.poll(200);
  mon.close();
  out.notifications = notes;
  writeFileSync(OUT, JSON.stringify({ captured: `Linux ${(await execOk('uname', ['-r'])).trim()}, ${new Date().toISOString().slice(0, 10)}`, setup: [...setup.map((c) => `ip ${c}`), ...fdb.map((c) => `bridge ${c}`)], datagrams: out }, null, 1) + '\n');
  console.log(`wrote ${OUT}: ${Object.entries(out).map(([k, v]) => `${k} ${v.length}`).join(', ')}`);
} finally {
  await delNetns(ns);
}
