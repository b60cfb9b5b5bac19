// The chaos suite's fault plan (lab/chaos-schedule.ts) keeps its promises for any seed: a
// fault at least every 2 s, each undone inside the window, at most one etcd member impaired,
// a weftd never killed while down, every kind in every bag; and one seed, one plan.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FAULT_KINDS, GARBAGE_KINDS, planFaults, TRANSIENT_GARBAGE, type PlanOptions } from '../../../lab/chaos-schedule.js';
import { fc, property } from '../property.js';

const hosts = [1, 2, 3, 4, 5].map((i) => ({ name: `h${i}`, backend: i <= 3 ? 'vxlan' as const : 'udp' as const }));
const opts = (seed: number, seconds: number): PlanOptions => ({ seed, durationMs: seconds * 1000, hosts, etcdMembers: ['m0', 'm1', 'm2'] });

test('one seed, one plan; another seed, another plan', () => {
  assert.equal(planFaults(opts(12, 20)), planFaults(opts(12, 20)));
  assert.not.equal(planFaults(opts(12, 20)), planFaults(opts(13, 20)));
});

property('any seed and length: faults every <= 2 s, undone in the window, one etcd member at a time, no kill of a weftd that is down', fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 10, max: 400 }), (seed, seconds) => {
  const plan = planFaults(opts(seed, seconds));
  const end = seconds * 1000;
  let prev = 0; // the window starts with no fault; the first comes within 1 s
  let etcdFree = 0;
  const down = new Map<string, number>();
  for (const f of plan) {
    assert.ok(f.at - prev <= 2000, `gap ${prev} -> ${f.at}`);
    prev = f.at;
    assert.ok(f.at + f.holdMs <= end, `${f.kind} at ${f.at} held ${f.holdMs} ms past ${end}`);
    if (f.kind === 'etcd-stop' || f.kind === 'etcd-kill') {
      assert.ok(f.at >= etcdFree, `${f.kind} at ${f.at} while another member is impaired until ${etcdFree}`);
      etcdFree = f.at + f.holdMs + (f.kind === 'etcd-kill' ? 2000 : 500);
      assert.ok(etcdFree <= end + 1000);
    }
    if (f.kind === 'weftd-kill') {
      assert.ok((down.get(f.target) ?? 0) <= f.at, `${f.target} killed at ${f.at} while down`);
      down.set(f.target, f.at + f.holdMs + 1500);
    }
    if (f.kind === 'garbage-lease') {
      assert.ok((GARBAGE_KINDS as readonly string[]).includes(f.variant!));
      assert.is(f.holdMs > 0, TRANSIENT_GARBAGE.has(f.variant as never), `${f.variant} hold ${f.holdMs}`);
      if (f.variant === 'dup-mac' || f.variant === 'bad-mac') assert.ok(hosts.find((h) => h.name === f.target)!.backend === 'vxlan');
    }
  }
  assert.ok(end - 1000 - prev <= 2000, `no fault in the last ${end - prev} ms`);
  if (seconds >= 20) assert.equal([...new Set(plan.map((f) => f.kind))].sort(), [...FAULT_KINDS].sort());
}), 0.2);

test('--faults: only the kinds asked for; an unknown kind is an error naming it', () => {
  const plan = planFaults({ ...opts(1, 60), kinds: ['lease-delete', 'link-flap'] });
  assert.equal([...new Set(plan.map((f) => f.kind))].sort(), ['lease-delete', 'link-flap']);
  assert.throws(() => planFaults({ ...opts(1, 60), kinds: ['nope' as never] }), /unknown fault kind "nope"/);
});

test.run();
