// The one flag system: forms, one boolean rule, environment fallback, help.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatHelp, parseFlags, runCommand, UsageError, type FlagSet } from '../../../lib/flags.js';

const SET: FlagSet = {
  command: 'demo',
  envPrefix: 'DEMO_',
  flags: [
    { name: 'count', kind: 'int', def: 3, min: 1, max: 9, help: 'how many' },
    { name: 'mode', kind: 'string', choices: ['a', 'b', 'c'], help: 'which mode' },
    { name: 'hosts', kind: 'list', help: 'hosts' },
    { name: 'fast', kind: 'bool', help: 'go fast' },
    { name: 'json', kind: 'bool', env: false, help: 'JSON out' },
  ],
};

test('--name=value, --name value, bare booleans; defaults; env fallback with the flag winning', () => {
  const p = parseFlags(SET, ['--count=4', '--mode', 'b', '--fast', '--hosts', 'x,y'], { DEMO_COUNT: '7', DEMO_MODE: 'c' });
  assert.equal(p.values, { count: 4, mode: 'b', fast: true, hosts: ['x', 'y'] });
  assert.equal(parseFlags(SET, [], { DEMO_COUNT: '7', DEMO_JSON: 'true' }).values, { count: 7 }, 'json is not read from the environment');
  assert.equal(parseFlags(SET, []).values, { count: 3 });
});

test('one boolean rule everywhere: true/1/yes/empty and false/0/no, from argv and env alike', () => {
  for (const [raw, want] of [['true', true], ['1', true], ['yes', true], ['', true], ['false', false], ['0', false], ['no', false]] as const) {
    assert.is(parseFlags(SET, [`--fast=${raw}`]).values.fast, want, raw);
    assert.is(parseFlags(SET, [], { DEMO_FAST: raw }).values.fast, want, `env ${raw}`);
  }
  assert.throws(() => parseFlags(SET, ['--fast=maybe']), /invalid --fast "maybe": must be true or false/);
  assert.throws(() => parseFlags(SET, [], { DEMO_FAST: 'maybe' }), /invalid DEMO_FAST= "maybe": must be true or false/);
});

test('bad values name the flag; unknown flags and stray arguments are refused unless the set takes positionals', () => {
  const cases: Array<[string[], RegExp]> = [
    [['--count', '0'], /invalid --count "0": must be at least 1/],
    [['--count', 'x'], /must be a whole number/],
    [['--mode', 'z'], /invalid --mode "z": must be one of a, b, c/],
    [['--mode'], /flag --mode needs a value/],
    [['--nope'], /unknown flag --nope \(see demo --help\)/],
    [['stray'], /unexpected argument "stray" \(demo takes only --flags/],
  ];
  for (const [argv, re] of cases) assert.throws(() => parseFlags(SET, argv), (e: unknown) => e instanceof UsageError && re.test((e as Error).message), argv.join(' '));
  assert.equal(parseFlags({ ...SET, positional: true }, ['down', '--fast']).positional, ['down']);
});

test('help: usage, each flag with its default, choices and variable, -h/--help', async () => {
  const h = formatHelp(SET);
  assert.match(h, /^Usage: demo \[flags\]\n/);
  assert.match(h, /--count N\s+how many \(default 3\)\n\s+env DEMO_COUNT/);
  assert.match(h, /--mode VALUE\s+which mode: a, b, c/);
  assert.not.match(h, /DEMO_JSON/);
  assert.match(h, /-h, --help/);
  const out: string[] = [];
  let ran = false;
  const code = await runCommand({ flags: SET, run: async () => { ran = true; return 0; } }, ['-h'], {}, (s) => out.push(s));
  assert.is(code, 0);
  assert.not.ok(ran);
  assert.is(out.join(''), h + '\n');
});

test.run();
