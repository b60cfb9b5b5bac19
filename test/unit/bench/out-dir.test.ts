// Where `weft bench` writes: the tracked results the README shows only for a full
// run with the defaults; a quick or partial run elsewhere unless --out says so.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseFlags } from '../../../lib/flags.js';
import { benchCommand, defaultOut, DEFAULT_OUT, PARTIAL_OUT } from '../../../bench/bench-command.js';

const out = (...argv: string[]) => defaultOut(parseFlags(benchCommand.flags, argv));

test('a full run with the defaults writes the tracked results', () => {
  assert.is(out(), DEFAULT_OUT);
  assert.is(out('--quick=false'), DEFAULT_OUT);
});

test('any quick or partial flag writes elsewhere, never over the tracked results', () => {
  assert.is.not(PARTIAL_OUT, DEFAULT_OUT);
  for (const argv of [['--quick'], ['--reps', '1'], ['--seconds', '2'], ['--paths', 'vxlan'], ['--paths', 'none'], ['--leases', '10'], ['--puts', '5'], ['--no-scale']]) {
    assert.is(out(...argv), PARTIAL_OUT, argv.join(' '));
  }
});

test.run();
