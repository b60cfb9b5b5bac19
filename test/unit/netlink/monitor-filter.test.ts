// The monitor's kernel-side filter (netlink/monitor-filter.ts): the program it
// builds, run here by a small interpreter with the kernel's semantics for the
// instructions it uses (BPF_ABS loads in network byte order), on notifications
// encoded as the kernel sends them; and its encoding as struct sock_filter.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  AF_INET, encodeMessage, encodeRtMsg, encodeFilter, loadedType, monitorFilterProgram, RTM_DELLINK, RTM_DELNEIGH, RTM_DELNEXTHOP, RTM_DELROUTE,
  RTM_NEWLINK, RTM_NEWNEIGH, RTM_NEWNEXTHOP, RTM_NEWROUTE, RTN_UNICAST, RT_TABLE_MAIN, type Insn,
} from '../../../netlink/index.js';
import { routeEventsFilter } from '../../../backend/route-events.js';

/** The bytes the kernel keeps (0: dropped) for one message, running the instructions monitorFilterProgram emits. */
function runFilter(insns: readonly Insn[], msg: Buffer): number {
  let a = 0;
  for (let pc = 0; pc < insns.length;) {
    const x = insns[pc]!;
    switch (x.code) {
      case 0x28: // BPF_LD | BPF_H | BPF_ABS
        if (x.k + 2 > msg.length) return 0;
        a = msg.readUInt16BE(x.k);
        pc++;
        break;
      case 0x30: // BPF_LD | BPF_B | BPF_ABS
        if (x.k + 1 > msg.length) return 0;
        a = msg[x.k]!;
        pc++;
        break;
      case 0x15: // BPF_JMP | BPF_JEQ | BPF_K
        pc += 1 + (a === x.k ? x.jt : x.jf);
        break;
      case 0x06: // BPF_RET | BPF_K
        return x.k;
      default:
        throw new Error(`unexpected instruction 0x${x.code.toString(16)}`);
    }
  }
  throw new Error('ran past the end');
}

const route = (type: number, protocol: number) =>
  encodeMessage(type, 0, 0, 0, encodeRtMsg({ family: AF_INET, dstLen: 24, table: RT_TABLE_MAIN, protocol, scope: 0, type: RTN_UNICAST, flags: 0 }));
const other = (type: number) => encodeMessage(type, 0, 0, 0, Buffer.alloc(12));

test('routeEventsFilter without the underlay: deletions only; every addition dropped, ours or not', () => {
  const p = monitorFilterProgram(routeEventsFilter(87, false));
  for (const t of [RTM_DELROUTE, RTM_DELNEXTHOP, RTM_DELNEIGH, RTM_DELLINK]) assert.is(runFilter(p, t === RTM_DELROUTE ? route(t, 87) : other(t)), 0xffffffff, `type ${t}`);
  assert.is(runFilter(p, route(RTM_DELROUTE, 4)), 0xffffffff, 'a foreign deletion too');
  for (const m of [route(RTM_NEWROUTE, 87), route(RTM_NEWROUTE, 2), other(RTM_NEWNEIGH), other(RTM_NEWLINK), other(RTM_NEWNEXTHOP)]) assert.is(runFilter(p, m), 0);
});

test('routeEventsFilter with the underlay: route additions that are not ours pass, ours are dropped', () => {
  const p = monitorFilterProgram(routeEventsFilter(87, true));
  assert.is(runFilter(p, route(RTM_NEWROUTE, 87)), 0);
  for (const proto of [2, 3, 4, 86, 88, 255]) assert.is(runFilter(p, route(RTM_NEWROUTE, proto)), 0xffffffff, `protocol ${proto}`);
  assert.is(runFilter(p, route(RTM_DELROUTE, 87)), 0xffffffff);
  assert.is(runFilter(p, other(RTM_NEWNEIGH)), 0);
  assert.is(runFilter(p, other(RTM_NEWNEXTHOP)), 0);
  assert.is(runFilter(p, Buffer.alloc(3)), 0, 'a runt is dropped, not read past');
});

test('nlmsg_type as BPF_ABS sees it: byte-swapped on a little-endian host', () => {
  assert.is(loadedType(RTM_NEWROUTE, 'LE'), 24 << 8);
  assert.is(loadedType(RTM_NEWROUTE, 'BE'), 24);
  assert.is(loadedType(0x1234, 'LE'), 0x3412);
});

test('encodeFilter: struct sock_filter { u16 code; u8 jt; u8 jf; u32 k } in host order; bad input named', () => {
  const insns = monitorFilterProgram({ types: [RTM_DELROUTE] }, 'LE');
  assert.equal(insns.map((x) => [x.code, x.jt, x.jf, x.k]), [[0x28, 0, 0, 4], [0x15, 1, 0, 25 << 8], [0x06, 0, 0, 0], [0x06, 0, 0, 0xffffffff]]);
  assert.equal([...encodeFilter(insns, 'LE').subarray(8, 16)], [0x15, 0, 1, 0, 0x00, 0x19, 0, 0]);
  assert.equal([...encodeFilter(insns, 'BE').subarray(8, 16)], [0, 0x15, 1, 0, 0, 0, 0x19, 0]);
  assert.throws(() => monitorFilterProgram({ types: [] }), /accepts nothing/);
  assert.throws(() => monitorFilterProgram({ types: [70000] }), /70000/);
  assert.throws(() => monitorFilterProgram({ types: [], foreignRoutesBesides: 300 }), /300/);
});

test.run();
