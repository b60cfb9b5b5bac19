import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EtcdAuthError, EtcdTlsError, EtcdUnavailableError } from '../../../subnet-manager/errors.js';
import { explainTlsFailure, toUnavailable } from '../../../subnet-manager/registry.js';

// Messages as grpc-js/OpenSSL print them (seen against etcd 3.4 with --client-cert-auth).
const NO_CLIENT_CERT = '14 UNAVAILABLE: No connection established. Last error: 804C4E86647F0000:error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:1601:SSL alert number 42\n';
const UNTRUSTED_SERVER = '14 UNAVAILABLE: No connection established. Last error: Error: unable to verify the first certificate. Resolution note: ';
const REFUSED = '14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED 192.0.2.250:2379';

test('TLS failures are explained and not retryable', () => {
  assert.match(explainTlsFailure(NO_CLIENT_CERT)!, /rejected our client certificate.*--etcd-certfile/);
  assert.match(explainTlsFailure(UNTRUSTED_SERVER)!, /cannot verify etcd's server certificate.*--etcd-cafile/);
  const e = toUnavailable(new Error(NO_CLIENT_CERT), ['https://192.0.2.250:2379']);
  assert.instance(e, EtcdTlsError);
  assert.is((e as EtcdTlsError).retryable, false);
  assert.match((e as Error).message, /^TLS to etcd \(https:\/\/192\.0\.2\.250:2379\) failed: /);
});

test('a refused connection stays a retryable outage', () => {
  assert.is(explainTlsFailure(REFUSED), undefined);
  const e = toUnavailable(new Error(REFUSED), ['https://192.0.2.250:2379']);
  assert.instance(e, EtcdUnavailableError);
  assert.is((e as EtcdUnavailableError).retryable, true);
});

test('etcd auth refusals are explained and not retryable', () => {
  for (const [msg, re] of [
    ['3 INVALID_ARGUMENT: etcdserver: user name is empty', /authentication enabled; give --etcd-username and --etcd-password/],
    ['etcdserver: authentication failed, invalid user ID or password', /rejected the user name or password/],
    ['7 PERMISSION_DENIED: etcdserver: permission denied', /needs readwrite on the etcd prefix/],
  ] as const) {
    const e = toUnavailable(new Error(msg), ['http://192.0.2.2:2379']);
    assert.instance(e, EtcdAuthError);
    assert.is((e as EtcdAuthError).retryable, false);
    assert.match((e as Error).message, re);
  }
});

test.run();
