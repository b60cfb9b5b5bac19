// Property tests of the network config parser (and the backends' parts of it): for any text
// at <prefix>/config it returns a frozen config or throws ConfigError naming the bad value,
// never anything else; and every config it accepts is consistent (SubnetMin..SubnetMax
// aligned, inside Network, SubnetLen between the Network's prefix and 30).
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { fc, onlyThrows, property } from '../property.js';
import { ConfigError } from '../../../lib/errors.js';
import { parseNetworkConfig } from '../../../subnet-manager/config.js';
import { parseVxlanConfig } from '../../../backend/vxlan/config.js';
import { parseUdpConfig } from '../../../backend/udp/config.js';

const octet = fc.integer({ min: 0, max: 255 });
const ip4 = fc.tuple(octet, octet, octet, octet).map((o) => o.join('.'));
const cidr = fc.tuple(ip4, fc.integer({ min: 0, max: 33 })).map(([a, l]) => `${a}/${l}`);
/** Field values that are nearly right: the right type, edge numbers, or something else entirely. */
const fieldValue = fc.oneof(cidr, ip4, fc.integer({ min: -2, max: 40 }), fc.double(), fc.boolean(), fc.constant(null), fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 2 }));
const backend = fc.oneof(
  fc.record({ Type: fc.oneof(fc.constantFrom('vxlan', 'udp', 'host-gw', ''), fieldValue), VNI: fieldValue, Port: fieldValue, MTU: fieldValue, DirectRouting: fieldValue, Engine: fieldValue, Offload: fieldValue }, { requiredKeys: [] }),
  fc.jsonValue({ maxDepth: 2 }),
);
const config = fc.record({
  Network: fc.oneof(cidr, fieldValue), SubnetLen: fieldValue, SubnetMin: fc.oneof(ip4, fieldValue), SubnetMax: fc.oneof(ip4, fieldValue),
  EnableIPv6: fieldValue, IPv6Network: fc.oneof(fc.ipV6().map((a) => `${a}/48`), fieldValue), IPv6SubnetLen: fieldValue, Backend: backend,
}, { requiredKeys: [] });
/** Go's encoding/json matches keys case-insensitively, so do we: the same objects with random key case. */
const recased = fc.tuple(config, fc.infiniteStream(fc.boolean())).map(([o, flips]) => Object.fromEntries(Object.entries(o).map(([k, v]) => {
  const it = flips[Symbol.iterator]();
  return [[...k].map((c) => (it.next().value ? c.toUpperCase() : c.toLowerCase())).join(''), v];
})));
const mutatedText = fc.tuple(config.map((c) => JSON.stringify(c)), fc.nat(), fc.nat({ max: 3 }), fc.string({ maxLength: 3 })).map(([s, at, del, ins]) => {
  const i = at % (s.length + 1);
  return s.slice(0, i) + ins + s.slice(i + del);
});
const anyText = fc.oneof(fc.string(), fc.json(), config.map((c) => JSON.stringify(c)), recased.map((c) => JSON.stringify(c)), mutatedText);

property('parseNetworkConfig: any text gives a consistent, frozen config or a ConfigError', fc.property(anyText, (text) => {
  let cfg: ReturnType<typeof parseNetworkConfig> | undefined;
  const err = onlyThrows([ConfigError], () => { cfg = parseNetworkConfig(text); });
  if (err) { assert.ok(err.message.length > 0); return; }
  const c = cfg!;
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.backend));
  assert.ok(c.subnetLen > c.network.prefixLen && c.subnetLen <= 30, `SubnetLen ${c.subnetLen} of ${c.network}`);
  for (const b of [c.subnetMin, c.subnetMax]) {
    assert.ok(c.network.containsNet(b), `${b} outside ${c.network}`);
    assert.is(b.prefixLen, c.subnetLen);
  }
  assert.ok(c.subnetMin.ip <= c.subnetMax.ip);
  assert.type(c.backend.type, 'string');
}));

/** Configs that are valid by construction: every one must be accepted, with the defaults flannel documents. */
const validConfig = fc.integer({ min: 8, max: 28 }).chain((plen) => fc.record({
  plen: fc.constant(plen),
  net: fc.integer({ min: 0, max: 0xffffffff }),
  slen: fc.option(fc.integer({ min: plen + 1, max: 30 }), { nil: undefined }),
}));
property('parseNetworkConfig accepts every well-formed config, with flannel\'s defaults', fc.property(validConfig, ({ plen, net, slen }) => {
  const base = (net & (plen === 0 ? 0 : (0xffffffff << (32 - plen)))) >>> 0;
  const network = `${[24, 16, 8, 0].map((s) => (base >>> s) & 255).join('.')}/${plen}`;
  const c = parseNetworkConfig(JSON.stringify({ Network: network, ...(slen ? { SubnetLen: slen } : {}) }));
  assert.is(c.network.toString(), network);
  assert.is(c.subnetLen, slen ?? (plen <= 22 ? 24 : plen + 2));
  assert.is(c.backend.type, 'vxlan');
  const size = 2 ** (32 - c.subnetLen);
  assert.is(Number(c.subnetMin.ip) - base, size, 'SubnetMin is the second subnet');
  assert.is(Number(c.subnetMax.ip), base + 2 ** (32 - plen) - size, 'SubnetMax is the last subnet');
}));

const backendObject = backend.filter((b): b is Record<string, unknown> => typeof b === 'object' && b !== null && !Array.isArray(b));
property('parseVxlanConfig and parseUdpConfig: any Backend object gives a frozen config or a ConfigError', fc.property(backendObject, (raw) => {
  for (const parse of [parseVxlanConfig, parseUdpConfig] as Array<(r: Readonly<Record<string, unknown>>) => unknown>) {
    let c: unknown;
    const err = onlyThrows([ConfigError], () => { c = parse(raw); });
    if (!err) assert.ok(Object.isFrozen(c));
  }
}));

test.run();
