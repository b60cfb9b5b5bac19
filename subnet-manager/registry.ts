// Raw etcd operations on the flannel layout, one method per request, with
// etcd3's transport errors turned into EtcdUnavailableError. Policy (what to
// acquire, when to renew) lives in manager.ts; watching in watch.ts.
import { Etcd3, type IOptions } from 'etcd3';
import { WeftError } from '../lib/errors.js';
import { trace, tracing } from '../lib/trace.js';
import { EtcdAuthError, EtcdTlsError, EtcdUnavailableError } from './errors.js';
import type { RawKV } from './lease-table.js';
import { fastWatchDecoding } from './watch-decode.js';

/** An etcd key-value as the listing and the watches deliver it. */
function rawKV(kv: { key: Buffer; value: Buffer; mod_revision: string | number; create_revision: string | number; lease?: string | number }): RawKV {
  return {
    key: kv.key.toString(), value: kv.value.toString(),
    modRevision: Number(kv.mod_revision), createRevision: Number(kv.create_revision), leaseId: String(kv.lease ?? '0'),
  };
}

/** One change under <prefix>/subnets/ as the watch delivers it. */
export type SubnetEvent = { readonly type: 'put'; readonly kv: RawKV } | { readonly type: 'delete'; readonly key: string; readonly modRevision: number };

/** What a watch reports; see watchSubnets. */
export interface SubnetWatchHandlers {
  connected(): void;
  /** A response: its events in order (empty: a progress notification up to headerRevision). */
  data(events: SubnetEvent[], headerRevision: number): void;
  /** The stream was lost; the watch is over (make a new one to resume). */
  disconnected(err: unknown): void;
  /** The server canceled the watch (e.g. its start revision was compacted); etcd3 has dropped it. */
  canceled(err: Error): void;
}

/**
 * Largest etcd response we take (gRPC's receive limit, 4 MiB by default). A listing of
 * about 28,000 flannel leases, or a resuming watcher's catch-up of a few large
 * transactions (etcd sends up to 1000 revisions in one response), is larger; at
 * the default the request failed as "RESOURCE_EXHAUSTED", which reads as etcd being
 * unavailable, and was retried forever.
 */
export const MAX_RESPONSE_BYTES = 256 * 2 ** 20;

/** Per-request deadline, so a hung member cannot stall a call forever. */
export const CALL_TIMEOUT_MS = 5000;

export interface RegistryOptions {
  endpoints: string[];
  prefix: string;
  etcdOptions?: Record<string, unknown>;
  /** Called after every successful request. */
  onContact?: () => void;
  /** One attempt per request instead of etcd3's three (the CLI: report an unreachable etcd at once). */
  failFast?: boolean;
}

/** What a TLS failure from grpc/OpenSSL means for the operator, or undefined if it is not one. */
export function explainTlsFailure(message: string): string | undefined {
  if (/alert (bad certificate|certificate required|unknown ca|certificate unknown|access denied)|SSL alert number (42|46|48|116)\b/i.test(message)) {
    return 'etcd rejected our client certificate (none given, or not signed by a CA etcd trusts); check --etcd-certfile and --etcd-keyfile';
  }
  if (/unable to verify|self[- ]signed certificate|certificate verify failed|unable to get (local )?issuer|certificate has expired|Hostname\/IP does not match|ERR_TLS_CERT/i.test(message)) {
    return "cannot verify etcd's server certificate; check --etcd-cafile (and that the certificate names the endpoint's address)";
  }
  if (/wrong version number|packet length too long|http_request|unknown protocol/i.test(message)) {
    return 'TLS handshake failed: is this endpoint plain http while the URL says https (or the other way round)?';
  }
  return undefined;
}

/** What etcd's answer to an unauthenticated or unauthorised request means, or undefined. */
export function explainAuthFailure(message: string): string | undefined {
  if (/user name is empty/i.test(message)) return 'etcd has authentication enabled; give --etcd-username and --etcd-password';
  if (/authentication failed|invalid user ID or password|user name not found/i.test(message)) return 'etcd rejected the user name or password (--etcd-username, --etcd-password)';
  if (/permission denied|role not granted|invalid auth token/i.test(message)) return 'etcd denied access: the user needs readwrite on the etcd prefix (--etcd-prefix)';
  return undefined;
}

export function toUnavailable(e: unknown, endpoints: readonly string[]): unknown {
  if (e instanceof WeftError) return e;
  const err = e as Error;
  const name = err?.constructor?.name ?? '';
  const auth = explainAuthFailure(err?.message ?? '');
  if (auth) return new EtcdAuthError(`etcd (${endpoints.join(', ')}) refused the request: ${auth} (${(err.message ?? '').split('\n')[0]!.slice(0, 200)})`, { cause: e });
  const tls = explainTlsFailure(err?.message ?? '');
  if (tls) return new EtcdTlsError(`TLS to etcd (${endpoints.join(', ')}) failed: ${tls} (${(err.message ?? '').split('\n')[0]!.slice(0, 300)})`, { cause: e });
  // Permission/auth problems are not transient; everything else from the
  // transport (unavailable, deadline, broken circuit, closed stream) is.
  if (/PermissionDenied|Authentication|InvalidAuthToken|RoleNotGranted/.test(name)) return e;
  return new EtcdUnavailableError(`etcd unavailable (${endpoints.join(', ')}): ${err?.message ?? String(e)}`, { cause: e });
}

/**
 * etcd3's watch manager retries a lost stream on its own timer (default
 * exponential up to 30 s, which also keeps a closing process alive that long).
 * Our watch loop re-creates watchers itself, so cap etcd3's to our 100 ms..5 s.
 * Structurally a cockatiel IBackoff.
 */
class CappedBackoff {
  constructor(readonly duration = 100) {}
  next(): CappedBackoff { return new CappedBackoff(Math.min(this.duration * 2, 5000)); }
}

/** Runs each request once: structurally the cockatiel policy etcd3 takes as faultHandling.global (it only calls execute). */
const ONE_ATTEMPT = { execute: <T>(fn: () => PromiseLike<T> | T): Promise<T> => Promise.resolve().then(fn) };
type GlobalPolicy = NonNullable<NonNullable<IOptions['faultHandling']>['global']>;

/**
 * A channel option of our own: a new value gives the next client new grpc
 * subchannels (grpc-js shares a subchannel, i.e. a TCP connection, between
 * clients whose options are equal), so reconnect() really connects anew.
 */
const CONNECTION_OPTION = 'weft.etcd_connection';

export class Registry {
  private client: Etcd3;
  private readonly opts: IOptions;
  /** Times reconnect() dropped the connections. */
  private generation = 0;
  /** The watches running on the current client, to end them on reconnect(). */
  private readonly watches = new Set<{ end(err: Error): void }>();
  readonly prefix: string;
  readonly subnetsPrefix: string;
  readonly configKey: string;
  private readonly endpoints: string[];
  private readonly onContact: () => void;

  constructor(o: RegistryOptions) {
    if (!Array.isArray(o.endpoints) || o.endpoints.length === 0) throw new TypeError('endpoints must be a non-empty array of URLs');
    this.endpoints = [...o.endpoints];
    this.prefix = o.prefix.replace(/\/+$/, '');
    this.subnetsPrefix = `${this.prefix}/subnets/`;
    this.configKey = `${this.prefix}/config`;
    this.onContact = o.onContact ?? (() => {});
    const opts: IOptions = {
      hosts: this.endpoints,
      dialTimeout: 3000,
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: new Date(Date.now() + CALL_TIMEOUT_MS) }),
      grpcOptions: {
        'grpc.keepalive_time_ms': 10_000, 'grpc.keepalive_timeout_ms': 5_000, 'grpc.max_receive_message_length': MAX_RESPONSE_BYTES,
        // Not a channel option: grpc-js's client takes it out (see watch-decode.ts).
        interceptor_providers: [fastWatchDecoding],
      },
      faultHandling: { watchBackoff: new CappedBackoff(), ...(o.failFast ? { global: ONE_ATTEMPT as unknown as GlobalPolicy } : {}) },
      ...(o.etcdOptions as Partial<IOptions> | undefined),
    };
    this.opts = opts;
    this.client = this.newClient();
  }

  private newClient(): Etcd3 {
    return new Etcd3({ ...this.opts, grpcOptions: { ...this.opts.grpcOptions, [CONNECTION_OPTION]: this.generation } });
  }

  /**
   * Drops every connection to etcd and its watches, and connects anew on the
   * next request. For when the connections are known dead but TCP cannot tell
   * yet: our source address was removed (the underlay moved to a new public IP),
   * so the kernel can send nothing more on them and grpc's keepalive would
   * notice only after 15 s. Each running watch reports 'disconnected' (with
   * `reason`), so its owner starts it again on the new connection; requests
   * in flight on the old one end at their deadline.
   */
  reconnect(reason: string): void {
    const old = this.client;
    this.generation++;
    this.client = this.newClient();
    const err = new EtcdUnavailableError(`etcd connection dropped: ${reason}`);
    for (const w of [...this.watches]) w.end(err);
    old.close();
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      const r = await fn();
      this.onContact();
      return r;
    } catch (e) {
      throw toUnavailable(e, this.endpoints);
    }
  }

  getConfig(): Promise<string | null> {
    return this.call(() => this.client.get(this.configKey).string());
  }

  /** All keys under <prefix>/subnets/ and the store revision of the listing. */
  listSubnets(): Promise<{ revision: number; kvs: RawKV[] }> {
    return this.call(async () => {
      const res = await this.client.getAll().prefix(this.subnetsPrefix).exec();
      return {
        revision: Number(res.header.revision),
        kvs: res.kvs.map(rawKV),
      };
    });
  }

  /** One key (null when absent) and the store revision of the read. */
  getKey(key: string): Promise<{ revision: number; kv: RawKV | null }> {
    return this.call(async () => {
      const res = await this.client.get(key).exec();
      return { revision: Number(res.header.revision), kv: res.kvs[0] ? rawKV(res.kvs[0]) : null };
    });
  }

  grant(ttlSeconds: number): Promise<string> {
    return this.call(async () => String((await this.client.leaseClient.leaseGrant({ TTL: ttlSeconds, ID: 0 })).ID));
  }

  /**
   * One keepalive of an etcd lease: the seconds it now has left, or 0 when
   * etcd no longer knows it (it expired or was revoked: its keys are gone).
   */
  keepAlive(leaseId: string): Promise<number> {
    return this.call(async () => {
      const stream = await this.client.leaseClient.leaseKeepAlive();
      try {
        return await new Promise<number>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no keepalive answer within ${CALL_TIMEOUT_MS} ms`)), CALL_TIMEOUT_MS);
          stream.on('data', (res: { TTL: string | number }) => { clearTimeout(timer); resolve(Math.max(0, Number(res.TTL))); });
          stream.on('error', (err: Error) => { clearTimeout(timer); reject(err); });
          stream.write({ ID: leaseId });
        });
      } finally {
        stream.end();
      }
    });
  }

  /** Every etcd lease id the cluster holds (etcd 3.3+): for tests and diagnosis. */
  leaseIds(): Promise<string[]> {
    return this.call(async () => (await this.client.leaseClient.leaseLeases()).leases.map((l) => String(l.ID)));
  }

  /** Revokes an etcd lease (deleting its keys); an unknown lease is not an error. */
  revoke(leaseId: string): Promise<void> {
    return this.call(async () => {
      try {
        await this.client.leaseClient.leaseRevoke({ ID: leaseId });
      } catch (e) {
        if (/lease not found/i.test((e as Error).message)) return;
        throw e;
      }
    });
  }

  /** txn: if version(key) == 0 then put(key, value, lease). */
  createIfAbsent(key: string, value: string, leaseId: string): Promise<{ ok: boolean; revision: number }> {
    return this.call(async () => {
      const put = this.client.put(key).value(value);
      if (leaseId !== '0') put.lease(leaseId);
      const r = await this.client.if(key, 'Version', '==', 0).then(put).commit();
      return { ok: r.succeeded, revision: Number(r.header.revision) };
    });
  }

  /** txn: if <column>(key) == expected then put(key, value, lease or none). */
  putIf(key: string, column: 'Lease' | 'Mod', expected: string | number, value: string, leaseId: string): Promise<{ ok: boolean; revision: number }> {
    return this.call(async () => {
      const put = this.client.put(key).value(value);
      if (leaseId !== '0') put.lease(leaseId);
      const r = await this.client.if(key, column, '==', expected).then(put).commit();
      return { ok: r.succeeded, revision: Number(r.header.revision) };
    });
  }

  /** txn: if lease(key) == leaseId then delete(key). */
  deleteIfLease(key: string, leaseId: string): Promise<boolean> {
    return this.call(async () => {
      const r = await this.client.if(key, 'Lease', '==', leaseId).then(this.client.delete().key(key)).commit();
      return r.succeeded;
    });
  }

  /**
   * Watches <prefix>/subnets/ from `fromRevision`. Each call is one etcd
   * watcher: after 'disconnected' or 'canceled' it is over, and the caller
   * decides where to resume (watch.ts tracks the revision itself).
   */
  watchSubnets(fromRevision: number, h: SubnetWatchHandlers): { cancel(): Promise<void> } {
    return this.watch(this.client.watch().prefix(this.subnetsPrefix), fromRevision, h);
  }

  /** Watches one key from `fromRevision` (undefined: from now); like watchSubnets. */
  watchKey(key: string, fromRevision: number | undefined, h: SubnetWatchHandlers): { cancel(): Promise<void> } {
    return this.watch(this.client.watch().key(key), fromRevision, h);
  }

  private watch(b: ReturnType<Etcd3['watch']>, fromRevision: number | undefined, h: SubnetWatchHandlers): { cancel(): Promise<void> } {
    const w = (fromRevision === undefined ? b : b.startRevision(String(fromRevision))).watcher();
    // Over once it reports 'disconnected' or 'canceled', or reconnect() ends it: nothing more is passed on.
    let over = false;
    let cancelling: Promise<void> | undefined;
    const cancel = () => (cancelling ??= w.cancel());
    /** Marks the watch over; false when it already was. */
    const close = (): boolean => {
      if (over) return false;
      over = true;
      this.watches.delete(entry);
      return true;
    };
    const entry = {
      end: (err: Error) => {
        if (!close()) return;
        void cancel().catch(() => {});
        h.disconnected(err);
      },
    };
    this.watches.add(entry);
    w.on('connected', () => {
      if (over) return;
      this.onContact();
      h.connected();
    });
    w.on('data', (res) => {
      if (over) return;
      this.onContact();
      const events: SubnetEvent[] = res.events.map((ev) => {
        return ev.type === 'Put'
          ? { type: 'put' as const, kv: rawKV(ev.kv) }
          : { type: 'delete' as const, key: ev.kv.key.toString(), modRevision: Number(ev.kv.mod_revision) };
      });
      if (tracing) trace('watch.data', { events: events.length, revision: Number(res.header.revision) });
      h.data(events, Number(res.header.revision));
    });
    w.on('disconnected', (err: unknown) => {
      if (close()) h.disconnected(err);
    });
    w.on('error', (err: Error) => {
      if (close()) h.canceled(err);
    });
    return {
      cancel: () => {
        close();
        return cancel();
      },
    };
  }

  /**
   * Seconds left of each etcd lease (-1 when it has expired). etcd has no call
   * for several leases at once, so the requests go out together (one round
   * trip over the one connection), each lease id once.
   */
  leaseTtls(leaseIds: Iterable<string>): Promise<Map<string, number>> {
    return this.call(async () => {
      const ids = [...new Set(leaseIds)].filter((id) => id !== '0' && id !== '');
      const ttls = await Promise.all(ids.map((ID) => this.client.leaseClient.leaseTimeToLive({ ID })));
      return new Map(ids.map((id, i) => [id, Number(ttls[i]!.TTL)]));
    });
  }

  /** The endpoints, as given: for messages that tell the operator what was tried. */
  get endpointList(): readonly string[] {
    return this.endpoints;
  }

  close(): void {
    this.client.close();
  }
}
