// How `remux rpc --tools` reads a custom method's command line (src/runtime/custom-cli.ts): the shapes
// that map onto words and options, the ones that take only --args-json, and the names a rejected
// argument is given (as the command line gave it).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { cliShape, customCallArgs } from '../../src/runtime/custom-cli.js';

test('shapes: leading scalars are positional, a last object of scalars or string lists takes options; others have none', () => {
  const spec = cliShape(z.tuple([z.string().describe('unit'), z.enum(['up', 'down']), z.number().optional(), z.object({ dryRun: z.boolean().default(false), hosts: z.array(z.string()), note: z.literal('x').optional() }).optional()]));
  assert.deepEqual(spec, { positional: ['unit', 'arg2', 'arg3?'], options: { dryRun: 'boolean', hosts: 'strings', note: 'string' } });
  assert.deepEqual(cliShape(z.tuple([])), { positional: [] });
  assert.match((cliShape(z.array(z.string())) as { reason: string }).reason, /not a z\.tuple/);
  assert.match((cliShape(z.tuple([z.string()]).rest(z.string())) as { reason: string }).reason, /rest element/);
  assert.match((cliShape(z.tuple([z.object({ a: z.string() }), z.string()])) as { reason: string }).reason, /argument 1 is of type object.*an options object comes last/);
  assert.match((cliShape(z.tuple([z.union([z.string(), z.number()])])) as { reason: string }).reason, /argument 1 is of type union/);
  assert.match((cliShape(z.tuple([z.object({ n: z.array(z.number()) })])) as { reason: string }).reason, /the field n of its options \(argument 1\) is of type array/);
  // A number option named mode is a file mode, in octal as the built-ins' --mode; a string one stays a string.
  assert.deepEqual(cliShape(z.tuple([z.object({ mode: z.number().int().optional() })])), { positional: [], options: { mode: 'mode' } });
  assert.deepEqual(customCallArgs('D.chmod', z.tuple([z.object({ mode: z.number() })]), ['--mode', '0640'], undefined), [{ mode: 0o640 }]);
  assert.throws(() => customCallArgs('D.chmod', z.tuple([z.object({ mode: z.number() })]), ['--mode', '640x'], undefined), /D\.chmod: --mode is an octal mode such as 0644, got "640x"/);
  assert.deepEqual(cliShape(z.tuple([z.object({ mode: z.enum(['fast', 'safe']) })])), { positional: [], options: { mode: 'string' } });
  // A description that is not one word does not name the argument.
  assert.deepEqual(cliShape(z.tuple([z.string().describe('the unit to deploy')])), { positional: ['arg1'] });
});

test('words become typed arguments; options by kebab or camel case; a word that does not read as the type is named by zod', () => {
  const args = z.tuple([z.string().describe('unit'), z.number().int().describe('count'), z.boolean().optional(), z.object({ dryRun: z.boolean().optional(), hosts: z.array(z.string()).optional() })]);
  assert.deepEqual(customCallArgs('D.go', args, ['web', '3', 'true', '--dry-run', '--hosts', 'a', '--hosts=b'], undefined), ['web', 3, true, { dryRun: true, hosts: ['a', 'b'] }]);
  assert.deepEqual(customCallArgs('D.go', args, ['web', '3', '--dryRun=false'], undefined), ['web', 3, undefined, { dryRun: false }]);
  assert.throws(() => customCallArgs('D.go', args, ['web', 'three'], undefined), /^ArgumentError: D\.go: COUNT \(argument 2\): Invalid input: expected number, received string \(usage: D\.go UNIT COUNT \[ARG3\] \[--dry-run\] \[--hosts VALUE\.\.\.\]\)$/);
  assert.throws(() => customCallArgs('D.go', args, ['web', '2.5', 'yes'], undefined), /COUNT \(argument 2\): .*int.*; ARG3 \(argument 3\): Invalid input: expected boolean, received string/);
  assert.throws(() => customCallArgs('D.go', args, ['web'], undefined), /D\.go needs its count/);
  assert.throws(() => customCallArgs('D.go', args, ['web', '1', 'true', 'extra'], undefined), /left over: extra/);
  // Counted in words a user reads: one argument, none.
  assert.throws(() => customCallArgs('D.one', z.tuple([z.string()]), ['a', 'b'], undefined), /^ArgumentError: D\.one takes 1 argument \(ARG1\); left over: b$/);
  assert.throws(() => customCallArgs('D.none', z.tuple([]), ['a'], undefined), /^ArgumentError: D\.none takes no arguments; left over: a$/);
  // Options the schema requires are named as options.
  const needs = z.tuple([z.object({ tag: z.string() })]);
  assert.throws(() => customCallArgs('D.tag', needs, [], undefined), /D\.tag: --tag: Invalid input: expected string, received undefined/);
  // An enum takes its words; another word is refused naming the values.
  const state = z.tuple([z.enum(['up', 'down']).describe('state')]);
  assert.deepEqual(customCallArgs('D.set', state, ['up'], undefined), ['up']);
  assert.throws(() => customCallArgs('D.set', state, ['sideways'], undefined), /STATE \(argument 1\): .*"up"\|"down"/);
});

test('--args-json: any shape, a JSON array; problems named by their place in it', () => {
  const args = z.tuple([z.object({ steps: z.array(z.object({ n: z.string() })) })]);
  assert.deepEqual(customCallArgs('D.plan', args, [], '[{"steps":[{"n":"a"}]}]'), [{ steps: [{ n: 'a' }] }]);
  assert.throws(() => customCallArgs('D.plan', args, [], '[{"steps":[{"n":1}]}]'), /^ArgumentError: D\.plan: argument 1\["steps"\]\[0\]\["n"\]: Invalid input: expected string, received number$/);
  assert.throws(() => customCallArgs('D.plan', args, [], '{"steps":[]}'), /--args-json is the arguments as a JSON array, got \{"steps":\[\]\}/);
  assert.throws(() => customCallArgs('D.plan', args, [], '[{'), /--args-json is not JSON/);
  assert.throws(() => customCallArgs('D.plan', args, ['x'], '[]'), /as words or as --args-json, not both \(left over: x\)/);
  assert.throws(() => customCallArgs('D.plan', args, ['x'], undefined), /D\.plan takes its arguments only as --args-json '\[…\]'/);
});
