// The bench's bulk etcd transactions: TxnRequest encoded by hand and TxnResponse
// read for its revision, checked against byte vectors written from etcd's
// rpc.proto field numbers and the protobuf wire format (the real etcd is in
// test/integration/bench/etcd-bulk.test.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeTxnAnswer, encodeTxn } from '../../../bench/etcd-bulk.js';

const hex = (b: Buffer) => b.toString('hex');
const frame = (body: string) => Buffer.concat([Buffer.from([0, 0, 0, 0, body.length / 2]), Buffer.from(body, 'hex')]);

test('one put: TxnRequest.success (2) → RequestOp.request_put (2) → PutRequest key (1), value (2), in a gRPC frame', () => {
  // 12 08 | 12 06 | 0a 01 'a' 12 01 'b'
  assert.is(hex(encodeTxn([{ key: 'a', value: 'b' }])), '000000000a' + '1208' + '1206' + '0a0161' + '120162');
});

test('lengths of 128 and more are two-byte varints, at every level', () => {
  const key = 'k'.repeat(200);
  const b = encodeTxn([{ key, value: '' }, { key: 'x', value: 'y' }]);
  // PutRequest: 0a c8 01 <200> 12 00 = 205 bytes; RequestOp: 12 cd 01 <205> = 208; success entry: 12 d0 01 <208> = 211
  const first = '12d001' + '12cd01' + '0ac801' + '6b'.repeat(200) + '1200';
  const second = '1208' + '1206' + '0a0178' + '120179';
  assert.is(b.readUInt32BE(1), 211 + 10);
  assert.is(hex(b.subarray(5)), first + second);
  assert.is(b.length, 5 + 221);
});

test('a key is sent as its UTF-8 bytes', () => {
  const b = encodeTxn([{ key: 'é', value: '' }]);
  assert.is(hex(b), '000000000a' + '1208' + '1206' + '0a02c3a9' + '1200');
});

test('a delete: RequestOp.request_delete_range (3) → DeleteRangeRequest key (1), no range end; mixed with puts in order', () => {
  // 12 05 | 1a 03 | 0a 01 'a'
  assert.is(hex(encodeTxn([{ key: 'a', delete: true }])), '0000000007' + '1205' + '1a03' + '0a0161');
  assert.is(hex(encodeTxn([{ key: 'a', value: 'b' }, { key: 'c', delete: true }])), '0000000011' + '1208' + '1206' + '0a0161' + '120162' + '1205' + '1a03' + '0a0163');
});

test('the answer: header.revision (1.3) and succeeded (2); cluster ids above 2^53, per-put responses (3) skipped', () => {
  // header { cluster_id: 0xcdef01234567abcd (10-byte varint), member_id: 7, revision: 300, raft_term: 2 }
  const header = '08cdd79eabb4a4c0f7cd01' + '1007' + '18ac02' + '2002';
  // responses: ResponseOp { response_put (2): PutResponse { header (1): { revision: 300 } } }
  const responses = '1a07' + '1205' + '0a03' + '18ac02';
  const body = '0a' + (header.length / 2).toString(16).padStart(2, '0') + header + '1001' + responses;
  assert.equal(decodeTxnAnswer(frame(body)), { revision: 300, succeeded: true });
  assert.equal(decodeTxnAnswer(frame('0a0318ac02')), { revision: 300, succeeded: false });
});

test('a broken answer is an error naming what is wrong', () => {
  assert.throws(() => decodeTxnAnswer(Buffer.from('000000', 'hex')), /3 bytes, not a gRPC message/);
  assert.throws(() => decodeTxnAnswer(Buffer.from('010000000100', 'hex')), /compressed/);
  assert.throws(() => decodeTxnAnswer(Buffer.from('00000000050a03', 'hex')), /frame says 5 bytes, 2 came/);
  assert.throws(() => decodeTxnAnswer(frame('0a0518ac02')), /field 1 runs past the message/);
  assert.throws(() => decodeTxnAnswer(frame('0a0218ac')), /truncated varint/);
  assert.throws(() => decodeTxnAnswer(frame('0b00')), /unexpected wire type 3 of field 1/);
});

test.run();
