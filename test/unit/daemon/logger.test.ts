import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createLogger } from '../../../daemon/logger.js';
import { logs, nullLogger } from '../../../lib/log.js';

test('logger writes one JSON line with child fields and drops levels below the minimum', () => {
  const lines: string[] = [];
  const log = createLogger('info', { component: 'weftd' }, (l) => lines.push(l)).child({ peer: '10.244.3.0/24' });
  log.debug('hidden');
  log.warn('peer skipped', { err: Object.assign(new Error('bad VtepMAC'), { code: 'EINVAL' }) });
  assert.is(lines.length, 1);
  const rec = JSON.parse(lines[0]!);
  assert.is(rec.level, 'warn');
  assert.is(rec.component, 'weftd');
  assert.is(rec.peer, '10.244.3.0/24');
  assert.equal(rec.err, { message: 'bad VtepMAC', code: 'EINVAL' });
});

test('one component key per line: a child\'s component replaces its parent\'s, also when given per line', () => {
  const lines: string[] = [];
  const root = createLogger('debug', { component: 'weftd' }, (l) => lines.push(l));
  const sm = root.child({ component: 'subnet-manager', prefix: '/coreos.com/network' });
  const watch = sm.child({ component: 'lease-watch' });
  watch.info('watching leases');
  sm.info('leased subnet', { component: 'ignored-is-not-a-second-key' });
  root.child({ peer: 'x' }).info('no component of its own');
  const count = (l: string) => l.split('"component":').length - 1;
  assert.equal(lines.map(count), [1, 1, 1]);
  assert.equal(lines.map((l) => JSON.parse(l).component), ['lease-watch', 'subnet-manager', 'weftd']);
  assert.is(JSON.parse(lines[0]!).prefix, '/coreos.com/network', 'other child fields are kept');
});

test('enabled(level) says what the level set writes, for the logger and its children; the null logger writes nothing', () => {
  const info = createLogger('info', {}, () => {});
  assert.equal(['debug', 'info', 'warn', 'error'].map((l) => info.enabled?.(l as 'debug')), [false, true, true, true]);
  assert.is(info.child({ component: 'x' }).enabled?.('debug'), false);
  assert.is(createLogger('debug', {}, () => {}).child({ peer: 'y' }).enabled?.('debug'), true);
  assert.is(logs(nullLogger, 'error'), false);
  assert.is(logs({ ...nullLogger, enabled: undefined }, 'debug'), true, 'a logger that cannot say is assumed to write');
});

test.run();
