// etcd's WatchResponse read straight from the gRPC message, for the watch
// stream etcd3 runs. etcd3 decodes it with protobufjs and then copies it into
// a plain object (proto-loader's toObject: every int64 through a Long object
// into a decimal string). For a response of 1000 events, which etcd sends for
// a 1000-put transaction or a resuming watcher's catch-up, that cost weftd
// 20-30 ms of one uninterrupted task in its first burst, and about
// 60 ms of main-thread CPU per 10,000 leases. This decoder builds the same
// object (so etcd3's watch manager and the registry read it unchanged) from
// the bytes in one pass, with int64s turned into strings directly.
//
// Installed through grpc-js's interceptor_providers client option, which
// etcd3 passes through from grpcOptions: a provider is handed each method's
// definition, and for Watch it replaces the definition's responseDeserialize.
// That definition is the one object all etcd3 clients of the process share;
// the replacement gives the same result, so the swap is the same for all.
export const WATCH_METHOD_PATH = '/etcdserverpb.Watch/Watch';

export interface DecodedHeader { cluster_id: string; member_id: string; revision: string; raft_term: string }
export interface DecodedKeyValue { key: Buffer; create_revision: string; mod_revision: string; version: string; value: Buffer; lease: string }
/** type: 'Put' or 'Delete' (etcd3's proto names them so), or the number for a value the proto does not name. */
export interface DecodedEvent { type: string | number; kv: DecodedKeyValue | null; prev_kv: DecodedKeyValue | null }
export interface DecodedWatchResponse {
  header: DecodedHeader | null;
  watch_id: string;
  created: boolean;
  canceled: boolean;
  compact_revision: string;
  cancel_reason: string;
  fragment: boolean;
  events: DecodedEvent[];
}

const EVENT_TYPES: readonly string[] = ['Put', 'Delete'];
const EMPTY = Buffer.alloc(0);
const TWO_32 = 2 ** 32;

let decoded = 0;

/** Responses decodeWatchResponse has decoded in this process (a test's proof that etcd3's watches use it). */
export function watchResponsesDecoded(): number {
  return decoded;
}

/** A position in one message's bytes; every read checks it stays inside `end`. */
class Reader {
  pos: number;
  /** The high 32 bits of the last varint read (its low 32 bits are what varint() returned). */
  hi = 0;

  constructor(readonly buf: Buffer, pos: number, public end: number) {
    this.pos = pos;
  }

  /** A varint's low 32 bits (unsigned); its high bits in `hi`. */
  varint(): number {
    const b = this.buf;
    let lo = 0;
    let hi = 0;
    let i = 0;
    for (; ; i++) {
      if (this.pos >= this.end) throw new Error(`truncated varint at byte ${this.pos}`);
      if (i === 10) throw new Error(`varint longer than 10 bytes at byte ${this.pos}`);
      const byte = b[this.pos++]!;
      const bits = byte & 0x7f;
      if (i < 4) lo |= bits << (7 * i);
      else if (i === 4) {
        lo |= bits << 28;
        hi = bits >>> 4;
      } else hi |= bits << (7 * i - 32);
      if (byte < 0x80) break;
    }
    this.hi = hi >>> 0;
    return lo >>> 0;
  }

  /** A length-delimited field's end, checked against this message's end. */
  lengthEnd(): number {
    const len = this.varint();
    if (this.hi !== 0 || this.pos + len > this.end) throw new Error(`length ${len} at byte ${this.pos} runs past the message`);
    return this.pos + len;
  }

  bytes(): Buffer {
    const end = this.lengthEnd();
    const out = this.buf.subarray(this.pos, end);
    this.pos = end;
    return out;
  }

  string(): string {
    const end = this.lengthEnd();
    const out = this.buf.toString('utf8', this.pos, end);
    this.pos = end;
    return out;
  }

  /** A signed 64-bit varint (int64) in decimal, as protobufjs writes it with longs: String. */
  int64(): string {
    const lo = this.varint();
    const hi = this.hi;
    if (hi < 0x200000) return String(hi * TWO_32 + lo);
    return BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo)).toString();
  }

  /** An unsigned 64-bit varint (uint64) in decimal. */
  uint64(): string {
    const lo = this.varint();
    const hi = this.hi;
    if (hi < 0x200000) return String(hi * TWO_32 + lo);
    return ((BigInt(hi) << 32n) | BigInt(lo)).toString();
  }

  bool(): boolean {
    const lo = this.varint();
    return lo !== 0 || this.hi !== 0;
  }

  /** Steps over a field this decoder does not read. */
  skip(wire: number): void {
    switch (wire) {
      case 0: this.varint(); return;
      case 1: this.advance(8); return;
      case 2: this.pos = this.lengthEnd(); return;
      case 5: this.advance(4); return;
      default: throw new Error(`wire type ${wire} at byte ${this.pos} is not one proto3 uses`);
    }
  }

  private advance(n: number): void {
    if (this.pos + n > this.end) throw new Error(`truncated field at byte ${this.pos}`);
    this.pos += n;
  }
}

/** Reads the sub-message that starts here with `read`, then goes on after it. */
function embedded<T>(r: Reader, read: (r: Reader) => T): T {
  const end = r.lengthEnd();
  const outer = r.end;
  r.end = end;
  const v = read(r);
  r.end = outer;
  r.pos = end;
  return v;
}

function readHeader(r: Reader): DecodedHeader {
  const h: DecodedHeader = { cluster_id: '0', member_id: '0', revision: '0', raft_term: '0' };
  while (r.pos < r.end) {
    const tag = r.varint();
    switch (tag) {
      case 0x08: h.cluster_id = r.uint64(); break;
      case 0x10: h.member_id = r.uint64(); break;
      case 0x18: h.revision = r.int64(); break;
      case 0x20: h.raft_term = r.uint64(); break;
      default: r.skip(tag & 7);
    }
  }
  return h;
}

function readKeyValue(r: Reader): DecodedKeyValue {
  const kv: DecodedKeyValue = { key: EMPTY, create_revision: '0', mod_revision: '0', version: '0', value: EMPTY, lease: '0' };
  while (r.pos < r.end) {
    const tag = r.varint();
    switch (tag) {
      case 0x0a: kv.key = r.bytes(); break;
      case 0x10: kv.create_revision = r.int64(); break;
      case 0x18: kv.mod_revision = r.int64(); break;
      case 0x20: kv.version = r.int64(); break;
      case 0x2a: kv.value = r.bytes(); break;
      case 0x30: kv.lease = r.int64(); break;
      default: r.skip(tag & 7);
    }
  }
  return kv;
}

function readEvent(r: Reader): DecodedEvent {
  const ev: DecodedEvent = { type: 'Put', kv: null, prev_kv: null };
  while (r.pos < r.end) {
    const tag = r.varint();
    switch (tag) {
      case 0x08: {
        // An enum is an int32 on the wire: a negative value comes as a 10-byte varint.
        const n = r.varint() | 0;
        ev.type = EVENT_TYPES[n] ?? n;
        break;
      }
      case 0x12: ev.kv = embedded(r, readKeyValue); break;
      case 0x1a: ev.prev_kv = embedded(r, readKeyValue); break;
      default: r.skip(tag & 7);
    }
  }
  return ev;
}

/**
 * One gRPC message of etcd's Watch stream → the object proto-loader builds with etcd3's options
 * (keepCase, longs: String, enums: String, defaults: true): every field present, int64s as
 * decimal strings, bytes as Buffers (views into `msg`). Throws on bytes that are not a
 * WatchResponse (grpc-js then ends the call as a parse failure, as it would for protobufjs's error).
 */
export function decodeWatchResponse(msg: Buffer): DecodedWatchResponse {
  decoded++;
  const r = new Reader(msg, 0, msg.length);
  const res: DecodedWatchResponse = {
    header: null, watch_id: '0', created: false, canceled: false, compact_revision: '0', cancel_reason: '', fragment: false, events: [],
  };
  while (r.pos < r.end) {
    const tag = r.varint();
    switch (tag) {
      case 0x0a: res.header = embedded(r, readHeader); break;
      case 0x10: res.watch_id = r.int64(); break;
      case 0x18: res.created = r.bool(); break;
      case 0x20: res.canceled = r.bool(); break;
      case 0x28: res.compact_revision = r.int64(); break;
      case 0x32: res.cancel_reason = r.string(); break;
      case 0x38: res.fragment = r.bool(); break;
      case 0x5a: res.events.push(embedded(r, readEvent)); break;
      default: r.skip(tag & 7);
    }
  }
  return res;
}

/**
 * For grpcOptions.interceptor_providers: gives the Watch method decodeWatchResponse as its
 * response deserializer, and adds no interceptor to any call.
 */
export function fastWatchDecoding(method: { readonly path: string; responseDeserialize: (msg: Buffer) => unknown }): undefined {
  if (method.path === WATCH_METHOD_PATH && method.responseDeserialize !== decodeWatchResponse) method.responseDeserialize = decodeWatchResponse;
  return undefined;
}
