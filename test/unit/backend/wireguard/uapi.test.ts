// wireguard-go's text protocol against wgctrl's own test dialogs
// (internal/wguser: configure_test.go "ok, all", parse_test.go okGet), and the
// client over a real unix socket served by a fake wireguard-go.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeUapiSet, parseEndpoint, parseUapiGet, UapiClient, UapiError } from '../../../../backend/wireguard/uapi.js';
import { publicKeyOf } from '../../../../backend/wireguard/key.js';
import { Prefix } from '../../../../lib/ip.js';

const hexb = (s: string) => Buffer.from(s, 'hex');

// wgctrl's okSet, with the IPv6 endpoint's zone (%2) left out: weft's endpoints carry none.
const OK_SET = `set=1
private_key=e84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a
listen_port=12912
fwmark=0
replace_peers=true
public_key=b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33
preshared_key=188515093e952f5f22e865cef3012e72f8b5f0b598ac0309d5dacce3b70fcf52
endpoint=[abcd:23::33]:51820
replace_allowed_ips=true
allowed_ip=192.168.4.4/32
public_key=58402e695ba1772b1cc9309755f043251ea77fdcf10fbe63989ceb7e19321376
update_only=true
endpoint=182.122.22.19:3233
persistent_keepalive_interval=111
replace_allowed_ips=true
allowed_ip=192.168.4.6/32
public_key=662e14fd594556f522604703340351258903b64f35553763f19426ab2a515c58
endpoint=5.152.198.39:51820
replace_allowed_ips=true
allowed_ip=192.168.4.10/32
allowed_ip=192.168.4.11/32
public_key=e818b58db5274087fcc1be5dc728cf53d3b5726b4cef6b9bab8f8f8c2452c25c
remove=true

`;

const OK_CONFIG = {
  privateKey: hexb('e84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a'),
  listenPort: 12912,
  fwmark: 0,
  replacePeers: true,
  peers: [
    { publicKey: hexb('b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33'), presharedKey: hexb('188515093e952f5f22e865cef3012e72f8b5f0b598ac0309d5dacce3b70fcf52'), endpoint: { ip: 'abcd:23::33', port: 51820 }, replaceAllowedIps: true, allowedIps: [Prefix.parse('192.168.4.4/32')] },
    { publicKey: hexb('58402e695ba1772b1cc9309755f043251ea77fdcf10fbe63989ceb7e19321376'), updateOnly: true, endpoint: { ip: '182.122.22.19', port: 3233 }, persistentKeepalive: 111, replaceAllowedIps: true, allowedIps: [Prefix.parse('192.168.4.6/32')] },
    { publicKey: hexb('662e14fd594556f522604703340351258903b64f35553763f19426ab2a515c58'), endpoint: { ip: '5.152.198.39', port: 51820 }, replaceAllowedIps: true, allowedIps: [Prefix.parse('192.168.4.10/32'), Prefix.parse('192.168.4.11/32')] },
    { publicKey: hexb('e818b58db5274087fcc1be5dc728cf53d3b5726b4cef6b9bab8f8f8c2452c25c'), remove: true },
  ],
};

const OK_GET = `private_key=e84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a
listen_port=12912
fwmark=1
public_key=b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33
preshared_key=188515093e952f5f22e865cef3012e72f8b5f0b598ac0309d5dacce3b70fcf52
allowed_ip=192.168.4.4/32
endpoint=[abcd:23::33%2]:51820
last_handshake_time_sec=1
last_handshake_time_nsec=2
public_key=58402e695ba1772b1cc9309755f043251ea77fdcf10fbe63989ceb7e19321376
tx_bytes=38333
rx_bytes=2224
allowed_ip=192.168.4.6/32
persistent_keepalive_interval=111
endpoint=182.122.22.19:3233
last_handshake_time_sec=0
last_handshake_time_nsec=0
public_key=662e14fd594556f522604703340351258903b64f35553763f19426ab2a515c58
endpoint=5.152.198.39:51820
last_handshake_time_sec=0
last_handshake_time_nsec=0
allowed_ip=192.168.4.10/32
allowed_ip=192.168.4.11/32
tx_bytes=1212111
rx_bytes=1929999999
protocol_version=1
errno=0

`;

test('set: wgctrl\'s "ok, all" dialog, line for line', () => {
  assert.is(encodeUapiSet(OK_CONFIG), OK_SET);
  assert.is(encodeUapiSet({}), 'set=1\n\n');
});

test('get: wgctrl\'s dialog parsed; the public key derived from the private one; zone dropped', () => {
  const d = parseUapiGet(OK_GET, 'wg0');
  assert.is(d.listenPort, 12912);
  assert.is(d.fwmark, 1);
  assert.ok(d.publicKey!.equals(publicKeyOf(d.privateKey!)));
  assert.is(d.peers.length, 3);
  const [a, b, c] = d.peers;
  assert.equal(a!.endpoint, { ip: 'abcd:23::33', port: 51820 });
  assert.is(a!.lastHandshake!.getTime(), 1000);
  assert.is(a!.presharedKey!.toString('hex'), '188515093e952f5f22e865cef3012e72f8b5f0b598ac0309d5dacce3b70fcf52');
  assert.is(b!.lastHandshake, null);
  assert.is(b!.txBytes, 38333);
  assert.is(b!.persistentKeepalive, 111);
  assert.equal(c!.allowedIps.map(String), ['192.168.4.10/32', '192.168.4.11/32']);
  assert.is(c!.rxBytes, 1929999999);
  assert.is(c!.presharedKey, undefined);
});

test('get: garbage and errors are UapiErrors naming what was wrong', () => {
  assert.throws(() => parseUapiGet('errno=2\n\n', 'wg0'), (e: unknown) => e instanceof UapiError && /errno=2/.test((e as Error).message));
  assert.throws(() => parseUapiGet('public_key=abcd\n', 'wg0'), /not 64 hex digits/);
  assert.throws(() => parseUapiGet('foo\n', 'wg0'), /without '='/);
  assert.throws(() => parseEndpoint('foo'), /not ip:port/);
  // Keys a newer wireguard-go adds are not ours to reject.
  assert.is(parseUapiGet('listen_port=1\nsomething_new=1\nerrno=0\n\n', 'wg0').listenPort, 1);
});

/** A fake wireguard-go: records each request and answers with `reply(request)`. */
async function serve(reply: (req: string) => string): Promise<{ path: string; got: string[]; server: Server; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'weft-uapi-'));
  const path = join(dir, 'wg0.sock');
  const got: string[] = [];
  const server = createServer((c) => {
    let buf = '';
    c.setEncoding('utf8');
    c.on('data', (d: string) => {
      buf += d;
      if (buf.endsWith('\n\n')) {
        got.push(buf);
        c.end(reply(buf));
      }
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  return { path, got, server, dir };
}

test('client: set sends the dialog and reads errno; a refusal names the errno', async () => {
  let errno = 0;
  const s = await serve(() => `errno=${errno}\n\n`);
  try {
    const c = new UapiClient('wg0', s.path, 2000);
    await c.set({ listenPort: 51820 });
    assert.equal(s.got, ['set=1\nlisten_port=51820\n\n']);
    errno = -98;
    try {
      await c.set({ listenPort: 51820 });
      assert.unreachable();
    } catch (e) {
      assert.instance(e, UapiError);
      assert.is((e as UapiError).errno, -98);
      assert.match((e as Error).message, /errno -98 \(EADDRINUSE\)/);
    }
  } finally {
    s.server.close();
    rmSync(s.dir, { recursive: true, force: true });
  }
});

test('client: get parses the answer; nobody listening is an error saying so', async () => {
  const s = await serve(() => OK_GET);
  try {
    const d = await new UapiClient('wg0', s.path, 2000).get();
    assert.equal(s.got, ['get=1\n\n']);
    assert.is(d.peers.length, 3);
  } finally {
    s.server.close();
    rmSync(s.dir, { recursive: true, force: true });
  }
  try {
    await new UapiClient('wg0', join(s.dir, 'gone.sock'), 500).get();
    assert.unreachable();
  } catch (e) {
    assert.instance(e, UapiError);
    assert.match((e as Error).message, /ENOENT \(is wireguard-go running for this device\?\)/);
  }
});

test.run();
