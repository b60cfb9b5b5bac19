// decodeWatchResponse against the decoder it stands in for: proto-loader's, loaded from
// etcd3's own rpc.proto with etcd3's options. Byte vectors for the fields weft reads, a
// property that any WatchResponse protobufjs encodes decodes to the same object both
// ways, and garbage: an Error, never a hang or another kind of throw.
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { loadSync } from '@grpc/proto-loader';
import { fc, property } from '../property.js';
import { decodeWatchResponse, fastWatchDecoding, WATCH_METHOD_PATH } from '../../../subnet-manager/watch-decode.js';

const require = createRequire(import.meta.url);
const protoDir = join(dirname(require.resolve('etcd3/package.json')), 'proto');
// etcd3's options (lib/connection-pool.js).
const pkg = loadSync(join(protoDir, 'rpc.proto'), { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
const watch = (pkg['etcdserverpb.Watch'] as Record<string, { path: string; responseSerialize: (o: unknown) => Buffer; responseDeserialize: (b: Buffer) => unknown }>)['Watch']!;
const reference = watch.responseDeserialize;

test('byte vector: a response with a header, a put and a delete', () => {
  const b = Buffer.from([
    0x0a, 0x06, 0x08, 0x07, 0x10, 0x09, 0x18, 0x2a, // header { cluster_id 7, member_id 9, revision 42 }
    0x10, 0x03, // watch_id 3
    0x5a, 0x0e, 0x12, 0x0c, 0x0a, 0x02, 0x6b, 0x31, 0x18, 0x2a, 0x2a, 0x02, 0x76, 0x31, 0x30, 0x05, // Put { kv { key "k1", mod_revision 42, value "v1", lease 5 } }
    0x5a, 0x08, 0x08, 0x01, 0x12, 0x04, 0x0a, 0x02, 0x6b, 0x32, // Delete { kv { key "k2" } }
  ]);
  const r = decodeWatchResponse(b);
  assert.equal(r.header, { cluster_id: '7', member_id: '9', revision: '42', raft_term: '0' });
  assert.is(r.watch_id, '3');
  assert.is(r.events.length, 2);
  assert.is(r.events[0]!.type, 'Put');
  assert.is(r.events[0]!.kv!.key.toString(), 'k1');
  assert.is(r.events[0]!.kv!.value.toString(), 'v1');
  assert.is(r.events[0]!.kv!.mod_revision, '42');
  assert.is(r.events[0]!.kv!.lease, '5');
  assert.is(r.events[1]!.type, 'Delete');
  assert.is(r.events[1]!.kv!.key.toString(), 'k2');
  assert.is(r.events[1]!.kv!.value.length, 0);
  assert.equal(r, reference(b));
});

test('byte vector: int64 and uint64 past 2^53, negative int64, and unknown fields of every wire type', () => {
  const b = Buffer.from([
    0x0a, 0x0b, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, // header { cluster_id 2^64-1 }
    0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, // watch_id -1
    0x28, 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10, // compact_revision 2^53 + 1 (not a double)
    0x78, 0x05, 0x81, 0x01, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x8a, 0x01, 0x00, 0x95, 0x01, 0x01, 0x02, 0x03, 0x04, // fields 15, 16, 17, 18
  ]);
  const r = decodeWatchResponse(b);
  assert.is(r.header!.cluster_id, '18446744073709551615');
  assert.is(r.watch_id, '-1');
  assert.is(r.compact_revision, '9007199254740993');
  assert.equal(r, reference(b));
});

test('an empty message is every default, as proto-loader gives it', () => {
  assert.equal(decodeWatchResponse(Buffer.alloc(0)), reference(Buffer.alloc(0)));
});

test('truncated and malformed messages throw an Error naming where', () => {
  const good = Buffer.from([0x5a, 0x04, 0x12, 0x02, 0x0a, 0x00]);
  decodeWatchResponse(good);
  for (let n = 1; n < good.length; n++) assert.throws(() => decodeWatchResponse(good.subarray(0, n)), /byte \d+/);
  assert.throws(() => decodeWatchResponse(Buffer.from([0x0b])), /wire type 3/);
  assert.throws(() => decodeWatchResponse(Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])), /longer than 10 bytes/);
});

test('the provider swaps only the Watch method\'s deserializer and adds no interceptor', () => {
  const other = { path: '/etcdserverpb.KV/Range', responseDeserialize: reference };
  assert.is(fastWatchDecoding(other), undefined);
  assert.is(other.responseDeserialize, reference);
  const w = { path: WATCH_METHOD_PATH, responseDeserialize: reference };
  assert.is(fastWatchDecoding(w), undefined);
  assert.is(w.responseDeserialize, decodeWatchResponse);
});

// Where decimal conversion can go wrong: 2^53 (the last integer a double holds), 2^63 (the sign of an int64), small.
const near = (b: bigint) => fc.bigInt({ min: b - 300n, max: b + 300n });
const int64 = fc.oneof(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), fc.bigInt({ min: 0n, max: 2n ** 40n }), near(2n ** 53n), near(-(2n ** 53n))).map(String);
const uint64 = fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.bigInt({ min: 0n, max: 1000n }), near(2n ** 53n), near(2n ** 63n)).map(String);
const bytes = fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a));
const keyValue = fc.record({ key: bytes, create_revision: int64, mod_revision: int64, version: int64, value: bytes, lease: int64 }, { requiredKeys: [] });
const event = fc.record({ type: fc.constantFrom('Put', 'Delete'), kv: keyValue, prev_kv: keyValue }, { requiredKeys: [] });
const response = fc.record({
  header: fc.record({ cluster_id: uint64, member_id: uint64, revision: int64, raft_term: uint64 }, { requiredKeys: [] }),
  watch_id: int64, created: fc.boolean(), canceled: fc.boolean(), compact_revision: int64,
  cancel_reason: fc.string({ unit: 'grapheme', maxLength: 20 }), fragment: fc.boolean(), events: fc.array(event, { maxLength: 6 }),
}, { requiredKeys: [] });

property('any WatchResponse decodes as proto-loader decodes it', fc.property(response, (o) => {
  const b = watch.responseSerialize(o);
  assert.equal(decodeWatchResponse(b), reference(b));
}));

property('any bytes: a decoded response or an Error, as quickly', fc.property(fc.uint8Array({ maxLength: 64 }), (a) => {
  try {
    decodeWatchResponse(Buffer.from(a));
  } catch (e) {
    assert.instance(e, Error);
  }
}));

test.run();
