// Which kernel nexthop objects are a RouteReconciler's, and which id each
// (gateway, device, onlink) of its routes uses.
// Ids: a reconciler owns the range <protocol><slot>0001..<protocol><slot>ffff,
// the top byte weft's route protocol, the next a hash of its family and
// Network (two overlays on one host that share the protocol get different
// slots, so they never take each other's objects). An id is stable while its
// object exists: after a restart the ids are found again in the kernel's dump
// (objects of the protocol and family, in the slot). A new id is created with
// `ip nexthop add` (exclusive): if the kernel says it exists, someone else has
// it, and another is taken next time. An object in the slot that a route
// outside the reconciler's scope uses is not its own either.
import type { IpFamily } from '../lib/ip.js';
import type { Nexthop } from '../netlink/index.js';

/** Ids per reconciler: the low 16 bits (0 is not an id). */
const SPAN = 0xffff;

/** The identity of an object: gateway, device, onlink (joined, not a template literal: a map key for the peer's life, one flat string; see formatIpNumber in lib/ip.ts). */
export const nexthopKey = (gateway: string, index: number, onlink: boolean): string => (onlink ? [gateway, index, 'onlink'] : [gateway, index]).join(' ');

/** FNV-1a of a string, folded to a byte. */
function slotOf(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return (h ^ (h >>> 8) ^ (h >>> 16) ^ (h >>> 24)) & 0xff;
}

export class NexthopIds {
  /** The first id of the range, minus one. */
  readonly base: number;
  /** key → id of the objects believed to be in the kernel (or being made now). */
  private readonly byKey = new Map<string, number>();
  /** id → key, the same map the other way. */
  private readonly byId = new Map<number, string>();
  /** Ids of the range that are not ours (someone else's objects, or an add the kernel refused). */
  private taken = new Set<number>();
  private cursor = 0;
  /** Ids made since the dump that load() will read began (beginLoad): that dump cannot know them. */
  private fresh?: Set<number>;

  constructor(protocol: number, family: IpFamily, network: string) {
    this.base = (((protocol & 0xff) << 24) | (slotOf(`${family} ${network}`) << 16)) >>> 0;
  }

  inRange(id: number): boolean {
    return id > this.base && id <= this.base + SPAN;
  }

  /** The id of an object the kernel holds (or is being made) for key. */
  idOf(key: string): number | undefined {
    return this.byKey.get(key);
  }

  keyOf(id: number): string | undefined {
    return this.byId.get(id);
  }

  /** A free id for key (not yet in the kernel: the caller adds it); undefined when the range is full. */
  allocate(key: string): number | undefined {
    for (let n = 0; n < SPAN; n++) {
      this.cursor = (this.cursor % SPAN) + 1;
      const id = this.base + this.cursor;
      if (this.byId.has(id) || this.taken.has(id)) continue;
      this.set(key, id);
      return id;
    }
    return undefined;
  }

  /** The kernel's object `id` holds key now. */
  set(key: string, id: number): void {
    const old = this.byKey.get(key);
    if (old !== undefined) this.byId.delete(old);
    const oldKey = this.byId.get(id);
    if (oldKey !== undefined) this.byKey.delete(oldKey);
    this.byKey.set(key, id);
    this.byId.set(id, key);
    this.fresh?.add(id);
  }

  /** The object is gone, or was never made: with `refused`, its id is someone else's until the next load. */
  forget(id: number, refused = false): void {
    const key = this.byId.get(id);
    if (key !== undefined && this.byKey.get(key) === id) this.byKey.delete(key);
    this.byId.delete(id);
    this.fresh?.delete(id);
    if (refused) this.taken.add(id);
  }

  /** A dump for load() starts now: objects made from here on are kept by load() though the dump lacks them. */
  beginLoad(): void {
    this.fresh = new Set();
  }

  /**
   * Starts over from a dump: ours are the objects of the protocol and family
   * in the range that no foreign route uses (`foreign`: ids used by routes
   * outside the scope). Returns ours, by id; where two hold the same key, the
   * lower id is kept (the other is not in the map, and is stale).
   */
  load(list: readonly Nexthop[], protocol: number, family: IpFamily, foreign: ReadonlySet<number>): Map<number, Nexthop> {
    const fresh = [...(this.fresh ?? [])].flatMap((id) => {
      const key = this.byId.get(id);
      return key === undefined ? [] : [[key, id] as const];
    });
    this.fresh = undefined;
    this.byKey.clear();
    this.byId.clear();
    this.taken = new Set();
    const ours = new Map<number, Nexthop>();
    for (const n of [...list].sort((a, b) => a.id - b.id)) {
      if (!this.inRange(n.id)) continue;
      const mine = n.protocol === protocol && n.family === family && !n.group && !n.blackhole && n.gateway !== undefined && n.index !== undefined && !foreign.has(n.id);
      if (!mine) {
        this.taken.add(n.id);
        continue;
      }
      ours.set(n.id, n);
      const key = nexthopKey(n.gateway!, n.index!, n.onlink);
      if (!this.byKey.has(key)) this.set(key, n.id);
      else this.taken.add(n.id); // a duplicate: stale, and not free either
    }
    for (const [key, id] of fresh) if (!this.byKey.has(key) && !this.byId.has(id) && !ours.has(id) && !this.taken.has(id)) this.set(key, id);
    return ours;
  }
}
