import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createLogger } from '../../../daemon/logger.js';

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

test.run();
