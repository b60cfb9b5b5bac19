// The control-plane bench's bulk lease writes: etcd's KV/Txn RPC spoken
// directly (gRPC over node:http2, the request encoded here, the answer read
// only for its revision), so the load generator is not part of the load.
// Through the etcd3 client the same ten 1000-put transactions cost the bench
// ~0.6 CPU-s (protobufjs building and encoding the requests, then decoding
// 10,000 per-put answers, each a header of four int64 turned into strings),
// on the two CPUs the agents it measures share, in the very second they
// decode the same leases. Single puts (put → route latency) still go through
// etcd3, as weftd's own requests do.
import { connect, type ClientHttp2Session } from 'node:http2';
import { connect as connectSocket } from 'node:net';

export interface BulkPut { readonly key: string; readonly value: string }
export interface BulkDelete { readonly key: string; readonly delete: true }
/** One operation of a bulk transaction: a put, or the delete of one key. */
export type BulkOp = BulkPut | BulkDelete;

/** Protobuf wire types. */
const VARINT = 0;
const LEN = 2;

const tag = (field: number, wire: number) => (field << 3) | wire;

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

function writeVarint(buf: Buffer, off: number, n: number): number {
  while (n >= 0x80) {
    buf[off++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[off++] = n;
  return off;
}

/**
 * TxnRequest { success: RequestOp { request_put: PutRequest { key, value } | request_delete_range:
 * DeleteRangeRequest { key } } ... } with no compares (etcdserverpb, rpc.proto: TxnRequest.success =
 * 2, RequestOp.request_put = 2, request_delete_range = 3, PutRequest.key = 1, PutRequest.value = 2,
 * DeleteRangeRequest.key = 1), in the gRPC length-prefixed frame.
 */
export function encodeTxn(ops: readonly BulkOp[]): Buffer {
  const parts = ops.map((o) => {
    const key = Buffer.from(o.key);
    const value = 'value' in o ? Buffer.from(o.value) : undefined;
    const req = 1 + varintSize(key.length) + key.length + (value ? 1 + varintSize(value.length) + value.length : 0);
    const op = 1 + varintSize(req) + req;
    return { key, value, req, op };
  });
  const body = parts.reduce((n, p) => n + 1 + varintSize(p.op) + p.op, 0);
  const buf = Buffer.allocUnsafe(5 + body);
  buf[0] = 0; // not compressed
  buf.writeUInt32BE(body, 1);
  let off = 5;
  for (const p of parts) {
    buf[off++] = tag(2, LEN); // TxnRequest.success
    off = writeVarint(buf, off, p.op);
    buf[off++] = tag(p.value ? 2 : 3, LEN); // RequestOp.request_put or request_delete_range
    off = writeVarint(buf, off, p.req);
    buf[off++] = tag(1, LEN); // PutRequest.key, DeleteRangeRequest.key
    off = writeVarint(buf, off, p.key.length);
    off += p.key.copy(buf, off);
    if (!p.value) continue;
    buf[off++] = tag(2, LEN); // PutRequest.value
    off = writeVarint(buf, off, p.value.length);
    off += p.value.copy(buf, off);
  }
  return buf;
}

/** Reads a varint at `off`: [value, next offset]. Values above 2^53 lose precision (revisions do not get there). */
function readVarint(buf: Buffer, off: number): [number, number] {
  let n = 0;
  let scale = 1;
  for (;;) {
    if (off >= buf.length) throw new Error('etcd Txn answer: truncated varint');
    const b = buf[off++]!;
    n += (b & 0x7f) * scale;
    if (b < 0x80) return [n, off];
    scale *= 128;
    if (scale > 2 ** 63) throw new Error('etcd Txn answer: varint longer than 64 bits');
  }
}

/** Calls fn(field, wire, value or [start, end) of a length-delimited one) for each top-level field of a message. */
function fields(buf: Buffer, start: number, end: number, fn: (field: number, wire: number, v: number, s: number, e: number) => void): void {
  let off = start;
  while (off < end) {
    let key: number;
    [key, off] = readVarint(buf, off);
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (wire === VARINT) {
      let v: number;
      [v, off] = readVarint(buf, off);
      fn(field, wire, v, 0, 0);
    } else if (wire === LEN) {
      let len: number;
      [len, off] = readVarint(buf, off);
      if (off + len > end) throw new Error(`etcd Txn answer: field ${field} runs past the message`);
      fn(field, wire, 0, off, off + len);
      off += len;
    } else if (wire === 1 || wire === 5) {
      off += wire === 1 ? 8 : 4;
    } else {
      throw new Error(`etcd Txn answer: unexpected wire type ${wire} of field ${field}`);
    }
  }
  if (off !== end) throw new Error('etcd Txn answer: a field runs past the message');
}

/** TxnResponse's header.revision (header = 1, ResponseHeader.revision = 3) and succeeded (= 2), from the gRPC frame. */
export function decodeTxnAnswer(frame: Buffer): { revision: number; succeeded: boolean } {
  if (frame.length < 5) throw new Error(`etcd Txn answer: ${frame.length} bytes, not a gRPC message`);
  if (frame[0] !== 0) throw new Error('etcd Txn answer: compressed (not asked for)');
  const len = frame.readUInt32BE(1);
  if (5 + len !== frame.length) throw new Error(`etcd Txn answer: frame says ${len} bytes, ${frame.length - 5} came`);
  let revision = 0;
  let succeeded = false;
  fields(frame, 5, frame.length, (field, wire, v, s, e) => {
    if (field === 2 && wire === VARINT) succeeded = v !== 0;
    if (field === 1 && wire === LEN) {
      fields(frame, s, e, (f, w, hv) => {
        if (f === 3 && w === VARINT) revision = hv;
      });
    }
  });
  return { revision, succeeded };
}

/** How an error names a transaction: '1000 puts', '400 deletes', '1 put and 2 deletes'. */
const describe = (ops: readonly BulkOp[]): string => {
  const deletes = ops.filter((o) => 'delete' in o).length;
  const n = (k: number, word: string) => (k === 0 ? '' : `${k} ${word}${k === 1 ? '' : 's'}`);
  return [n(ops.length - deletes, 'put'), n(deletes, 'delete')].filter(Boolean).join(' and ') || 'no operations';
};

/** A transaction encoded ahead of its sending (EtcdBulk.encode), and how errors name it. */
export interface EncodedTxn {
  readonly frame: Buffer;
  readonly what: string;
}

/**
 * One HTTP/2 connection to a lab etcd member for bulk transactions: its unix socket when it
 * has one (a lab in namespaces: not through the bench's own TCP relay), else its http:// URL.
 */
export class EtcdBulk {
  private readonly session: ClientHttp2Session;
  private readonly endpoint: string;
  private failure: Error | undefined;

  constructor(member: { readonly endpoint: string; readonly socketPath: string | undefined }) {
    const path = member.socketPath;
    this.endpoint = path ? `unix:${path}` : member.endpoint;
    if (!path && !/^http:\/\//.test(member.endpoint)) throw new Error(`bulk puts speak plain HTTP/2 to the lab's etcd, not ${JSON.stringify(member.endpoint)}`);
    this.session = path ? connect('http://localhost', { createConnection: () => connectSocket(path) }) : connect(member.endpoint);
    this.session.on('error', (e: Error) => { this.failure = e; });
  }

  /**
   * A transaction encoded now, to be sent by txn() later: a burst's leases are encoded before its
   * clock starts, as the hosts that write them would each encode their own on their own CPUs.
   */
  static encode(ops: readonly BulkOp[]): EncodedTxn {
    return { frame: encodeTxn(ops), what: describe(ops) };
  }

  /** One transaction of puts and deletes (or one encoded before); resolves to its revision. */
  txn(ops: readonly BulkOp[] | EncodedTxn): Promise<number> {
    const { frame, what } = 'frame' in ops ? ops : EtcdBulk.encode(ops);
    if (this.failure) return Promise.reject(new Error(`etcd ${this.endpoint}: ${this.failure.message}`));
    return new Promise((resolve, reject) => {
      const req = this.session.request({ ':method': 'POST', ':path': '/etcdserverpb.KV/Txn', 'content-type': 'application/grpc', te: 'trailers' });
      const chunks: Buffer[] = [];
      let status: string | undefined;
      let message = '';
      const take = (h: Record<string, unknown>) => {
        if (h['grpc-status'] !== undefined) status = String(h['grpc-status']);
        if (h['grpc-message'] !== undefined) message = decodeURIComponent(String(h['grpc-message']));
      };
      req.on('response', take);
      req.on('trailers', take);
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('error', (e: Error) => reject(new Error(`etcd ${this.endpoint} Txn of ${what}: ${e.message}`)));
      req.on('end', () => {
        if (status !== '0') {
          reject(new Error(`etcd ${this.endpoint} Txn of ${what}: gRPC status ${status ?? 'missing'}${message ? ` (${message})` : ''}`));
          return;
        }
        try {
          const a = decodeTxnAnswer(Buffer.concat(chunks));
          if (!a.succeeded) throw new Error('etcd Txn answer: not succeeded (there was no compare to fail)');
          resolve(a.revision);
        } catch (e) {
          reject(e);
        }
      });
      req.end(frame);
    });
  }

  close(): void {
    this.session.close();
  }
}
