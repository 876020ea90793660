import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { append, errTo, errToOut, from, list, pipeline, processGone, run, stage, tmpdir, to, writeScript, PATH } from './helpers.js';

const SH_OUT_ERR = ['sh', '-c', 'echo out; echo err >&2'];

describe('argv, pipelines and status', () => {
  test('runs argv directly: nothing is interpreted by a shell', async () => {
    const { res, out, err } = await run(['echo', '$HOME', '*', ';', '|', '`id`']);
    assert.equal(out, '$HOME * ; | `id`\n');
    assert.equal(err, '');
    assert.equal(res.exitCode, 0);
    assert.equal(res.error, null);
    assert.equal(res.bytesOut, out.length);
  });

  test('pipeline of three stages', async () => {
    const { res, out } = await run(list(pipeline(['printf', 'b\\na\\nc\\n'], ['sort'], ['head', '-n', '2'])));
    assert.equal(out, 'a\nb\n');
    assert.equal(res.exitCode, 0);
  });

  test('pipeline status: last stage, or the last non-zero with pipefail', async () => {
    const p = pipeline(['sh', '-c', 'exit 3'], ['sh', '-c', 'cat; exit 4'], ['true']);
    assert.equal((await run(list(p))).res.exitCode, 0);
    assert.equal((await run(list(p), { pipefail: true })).res.exitCode, 4);
    const ok = pipeline(['true'], ['true']);
    assert.equal((await run(list(ok), { pipefail: true })).res.exitCode, 0);
  });

  test('&&, || and ; follow sh', async () => {
    const a = await run(list(['false'], '&&', ['echo', 'b'], '||', ['echo', 'c']));
    assert.equal(a.out, 'c\n');
    assert.equal(a.res.exitCode, 0);
    const b = await run(list(['true'], '||', ['echo', 'no'], ';', ['echo', 'yes'], '&&', ['false']));
    assert.equal(b.out, 'yes\n');
    assert.equal(b.res.exitCode, 1);
    const c = await run(list(['false'], '&&', ['echo', 'skipped']));
    assert.equal(c.out, '');
    assert.equal(c.res.exitCode, 1, 'a skipped pipeline keeps the previous status');
    const d = await run(list(['true'], '&&', ['false'], '||', ['echo', 'rescued'], ';', ['sh', '-c', 'exit 7']));
    assert.equal(d.out, 'rescued\n');
    assert.equal(d.res.exitCode, 7);
  });

  test('a stage killed by a signal reports 128+N and the signal', async () => {
    const { res } = await run(['sh', '-c', 'kill -USR1 $$']);
    assert.equal(res.exitCode, 138);
    assert.equal(res.signal, 'SIGUSR1');
  });

  test('yes | head -n 1 ends promptly: the writer gets SIGPIPE', async () => {
    const t0 = Date.now();
    const { res, out } = await run(list(pipeline(['yes'], ['head', '-n', '1'])), { pipefail: true });
    assert.equal(out, 'y\n');
    assert.ok(Date.now() - t0 < 10_000, `took ${Date.now() - t0} ms`);
    assert.equal(res.exitCode, 141, 'yes died of SIGPIPE');
  });

  test('stdin defaults to /dev/null; a caller stream feeds the first reader', async () => {
    assert.equal((await run(['cat'])).out, '');
    const fed = await run(list(pipeline(['cat'], ['tr', 'a-z', 'A-Z'])), { stdin: Readable.from(['ab\n', 'cd\n']) });
    assert.equal(fed.out, 'AB\nCD\n');
  });
});

describe('2>&1 and redirects', () => {
  test('2>&1 on a middle stage sends stderr into the same pipe', async () => {
    const { out, err } = await run(list(pipeline(stage(SH_OUT_ERR, errToOut), ['sort'])));
    assert.equal(out, 'err\nout\n');
    assert.equal(err, '');
  });

  test('2>&1 on the last stage merges stderr into the caller stdout', async () => {
    const { res, out, err } = await run(list(stage(SH_OUT_ERR, errToOut)));
    assert.deepEqual(out.split('\n').sort(), ['', 'err', 'out']);
    assert.equal(err, '');
    assert.equal(res.bytesErr, 0);
    assert.equal(res.bytesOut, 8);
  });

  test('redirect order matters like in sh: `> f 2>&1` vs `2>&1 > f`', async () => {
    const dir = tmpdir();
    const a = await run(list(stage(SH_OUT_ERR, to('a'), errToOut)), { cwd: dir });
    assert.equal(a.out + a.err, '');
    assert.deepEqual(fs.readFileSync(path.join(dir, 'a'), 'utf8').split('\n').sort(), ['', 'err', 'out']);
    const b = await run(list(stage(SH_OUT_ERR, errToOut, to('b'))), { cwd: dir });
    assert.equal(b.out, 'err\n');
    assert.equal(fs.readFileSync(path.join(dir, 'b'), 'utf8'), 'out\n');
  });

  test('<, >, >> and 2> with relative paths against cwd and mode 0666 & ~umask', async () => {
    const dir = tmpdir();
    fs.writeFileSync(path.join(dir, 'in'), 'hello\n');
    fs.writeFileSync(path.join(dir, 'out'), 'old content that is longer\n');
    let r = await run(list(stage(['cat'], from('in'), to('out'))), { cwd: dir });
    assert.equal(r.out, '');
    assert.equal(fs.readFileSync(path.join(dir, 'out'), 'utf8'), 'hello\n', '> truncates');
    r = await run(list(stage(['echo', 'more'], append('out'))), { cwd: dir });
    assert.equal(r.out, '');
    assert.equal(fs.readFileSync(path.join(dir, 'out'), 'utf8'), 'hello\nmore\n');
    r = await run(list(stage(SH_OUT_ERR, errTo(path.join(dir, 'err')))), { cwd: dir });
    assert.equal(r.out, 'out\n');
    assert.equal(r.err, '');
    assert.equal(fs.readFileSync(path.join(dir, 'err'), 'utf8'), 'err\n');
    const mode = fs.statSync(path.join(dir, 'err')).mode & 0o777;
    assert.equal(mode, 0o666 & ~process.umask());
  });

  test('a redirect on a middle stage leaves its neighbours working', async () => {
    const dir = tmpdir();
    fs.writeFileSync(path.join(dir, 'in'), 'x\n');
    // `yes | cat < in | cat`: nobody reads yes, so it gets SIGPIPE; the file feeds the rest.
    const { res, out } = await run(list(pipeline(['yes'], stage(['cat'], from('in')), ['cat'])), { cwd: dir, pipefail: true });
    assert.equal(out, 'x\n');
    assert.equal(res.exitCode, 141);
  });

  test('a redirect that cannot be opened fails that pipeline with status 1, like sh', async () => {
    const dir = tmpdir();
    const r = await run(list(stage(['echo', 'hi'], to('/nonexistent-dir/x')), '||', ['echo', 'fallback']), { cwd: dir });
    assert.equal(r.out, 'fallback\n');
    assert.equal(r.err, 'remux: cannot open /nonexistent-dir/x for writing: ENOENT\n');
    assert.equal(r.res.exitCode, 0);
    assert.equal(r.res.error, 'remux: cannot open /nonexistent-dir/x for writing: ENOENT');
    assert.equal(r.res.errorKind, 'redirect');
    const d = await run(list(stage(['cat'], from('missing'))), { cwd: dir });
    assert.equal(d.res.exitCode, 1);
    assert.equal(d.err, 'remux: cannot open missing for reading: ENOENT\n');
    const e = await run(list(stage(['true'], to(dir))));
    assert.equal(e.res.exitCode, 1);
    assert.equal(e.err, `remux: cannot open ${dir} for writing: EISDIR\n`);
  });
});

describe('program lookup and failures', () => {
  test('not found → 127, not executable → 126, with the name in the message', async () => {
    const dir = tmpdir();
    fs.writeFileSync(path.join(dir, 'noexec'), '#!/bin/sh\necho hi\n', { mode: 0o644 });
    const a = await run(['no-such-program-xyz']);
    assert.equal(a.res.exitCode, 127);
    assert.equal(a.res.errorKind, 'not_found');
    assert.equal(a.err, 'remux: no-such-program-xyz: command not found\n');
    const b = await run(['./noexec'], { cwd: dir });
    assert.equal(b.res.exitCode, 126);
    assert.equal(b.res.errorKind, 'not_executable');
    assert.equal(b.res.error, 'remux: ./noexec: Permission denied');
    const c = await run(['./'], { cwd: dir });
    assert.equal(c.res.exitCode, 126);
    const d = await run(['./missing'], { cwd: dir });
    assert.equal(d.res.exitCode, 127);
    assert.equal(d.res.error, 'remux: ./missing: No such file or directory');
  });

  test('a failed stage does not stop its pipeline neighbours', async () => {
    const r = await run(list(pipeline(['no-such-program-xyz'], ['echo', 'still runs'])));
    assert.equal(r.out, 'still runs\n');
    assert.equal(r.res.exitCode, 0);
    assert.equal(r.res.errorKind, 'not_found');
  });

  test('programs are found only in the given PATH, absolute entries only', async () => {
    const dir = tmpdir();
    writeScript(dir, 'hello-remux', '#!/bin/sh\necho from-bin\n');
    const found = await run(['hello-remux'], { env: { PATH: `${dir}:${PATH}` } });
    assert.equal(found.out, 'from-bin\n');
    const relative = await run(['hello-remux'], { cwd: dir, env: { PATH: `.:${PATH}` } });
    assert.equal(relative.res.exitCode, 127);
    const noPath = await run(['echo', 'x'], { env: {} });
    assert.equal(noPath.res.exitCode, 127);
  });

  test('an interpreter that is missing is an exec failure, not a hang', async () => {
    const dir = tmpdir();
    writeScript(dir, 'bad', '#!/nonexistent/interpreter\n');
    const r = await run(['./bad'], { cwd: dir });
    assert.equal(r.res.exitCode, 127);
    assert.match(r.err, /remux: \.\/bad: cannot execute: ENOENT/);
  });

  test('the child sees exactly the given environment and cwd', async () => {
    const dir = tmpdir();
    const r = await run(list(['env'], ';', ['pwd']), { cwd: dir, env: { PATH, FOO: 'bar baz', EMPTY: '' } });
    const lines = r.out.trim().split('\n');
    assert.equal(lines.pop(), fs.realpathSync(dir));
    assert.deepEqual(lines.sort(), ['EMPTY=', 'FOO=bar baz', `PATH=${PATH}`]);
  });

  test('a malformed environment refuses before anything runs (125)', async () => {
    const envs: Array<Record<string, string>> = [{ PATH, 'A=B': 'x' }, { PATH, X: 'a\0b' }, { PATH, '': 'x' }];
    for (const env of envs) {
      const r = await run(['echo', 'x'], { env });
      assert.equal(r.res.exitCode, 125);
      assert.equal(r.res.errorKind, 'invalid');
      assert.equal(r.out + r.err, '');
    }
  });

  test('an unusable working directory refuses before anything runs (125)', async () => {
    const r = await run(['echo', 'x'], { cwd: '/nonexistent-cwd' });
    assert.equal(r.res.exitCode, 125);
    assert.equal(r.res.errorKind, 'cwd');
    assert.equal(r.res.error, 'cannot use working directory /nonexistent-cwd: no such directory');
    assert.equal(r.out, '');
    // Said in words, as policy check says it: a file is not a directory.
    const file = await run(['echo', 'x'], { cwd: '/etc/hostname' });
    assert.equal(file.res.exitCode, 125);
    assert.equal(file.res.error, 'cannot use working directory /etc/hostname: not a directory');
  });
});

describe('limits, termination and cleanup', () => {
  test('timeout kills the whole group, grandchildren included (124)', async () => {
    const t0 = Date.now();
    const { res, out } = await run(['sh', '-c', 'sleep 30 & echo $!; wait'], { timeoutMs: 300 });
    const grandchild = Number(out.trim());
    assert.ok(grandchild > 0);
    assert.equal(res.timedOut, true);
    assert.equal(res.exitCode, 124);
    assert.ok(Date.now() - t0 < 10_000, `took ${Date.now() - t0} ms`);
    assert.ok(processGone(grandchild), 'background sleep survived');
  });

  test('timeout escalates to SIGKILL after the grace when SIGTERM is ignored', async () => {
    const t0 = Date.now();
    const { res, out } = await run(['sh', '-c', 'trap "" TERM; sleep 30 & echo $!; wait; wait'], {
      timeoutMs: 200,
      killGraceMs: 300,
    });
    const elapsed = Date.now() - t0;
    assert.equal(res.timedOut, true);
    assert.ok(elapsed >= 450 && elapsed < 10_000, `took ${elapsed} ms`);
    assert.ok(processGone(Number(out.trim())));
  });

  test('timeout stops the rest of the list', async () => {
    const { res, out } = await run(list(['sleep', '5'], ';', ['echo', 'after']), { timeoutMs: 200 });
    assert.equal(out, '');
    assert.equal(res.exitCode, 124);
  });

  test('a background process left behind by a finished command is terminated', async () => {
    const t0 = Date.now();
    const { res, out } = await run(['sh', '-c', 'sleep 30 & echo $!']);
    assert.equal(res.exitCode, 0);
    assert.ok(Date.now() - t0 < 10_000);
    assert.ok(processGone(Number(out.trim())));
  });

  test('AbortSignal kills the command and reports it (130)', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    const t0 = Date.now();
    const { res } = await run(list(['sleep', '30'], ';', ['echo', 'never']), { signal: ac.signal });
    assert.equal(res.aborted, true);
    assert.equal(res.exitCode, 130);
    assert.ok(Date.now() - t0 < 10_000);
    const pre = new AbortController();
    pre.abort();
    const r = await run(['echo', 'x'], { signal: pre.signal });
    assert.equal(r.out, '');
    assert.equal(r.res.aborted, true);
  });

  test('output cap: 10 MB produced, exactly 1000 bytes delivered, command killed quickly', async () => {
    const t0 = Date.now();
    const { res, outBuf } = await run(list(pipeline(['yes', 'abcdefghij'], ['head', '-c', '10000000'])), {
      output: { maxBytes: 1000, redact: [], redactBlocks: [] },
    });
    assert.equal(res.truncated, true);
    assert.equal(outBuf.length, 1000);
    assert.equal(res.bytesOut, 1000);
    assert.ok(Date.now() - t0 < 10_000, `took ${Date.now() - t0} ms`);
    assert.notEqual(res.exitCode, 0);
  });

  test('output cap counts stderr and stdout together and stops the list', async () => {
    const { res, out, err } = await run(list(['sh', '-c', 'echo 12345 >&2; sleep 0.1; yes'], ';', ['echo', 'after']), {
      output: { maxBytes: 100, redact: [], redactBlocks: [] },
    });
    assert.equal(err, '12345\n');
    assert.equal(out.length, 94);
    assert.equal(res.bytesOut + res.bytesErr, 100);
    assert.equal(res.truncated, true);
    assert.ok(!out.includes('after'));
  });

  test('output exactly at the cap is complete, not truncated', async () => {
    const { res, out } = await run(['printf', 'abc'], { output: { maxBytes: 3, redact: [], redactBlocks: [] } });
    assert.equal(out, 'abc');
    assert.equal(res.truncated, false);
    assert.equal(res.exitCode, 0);
  });

  test('redaction catches a secret written in two pieces with a delay', async () => {
    const { out, res } = await run(['sh', '-c', 'printf "user pass"; sleep 0.2; printf "word=s3cret\\ndone"'], {
      output: { maxBytes: null, redact: [/password=\S+/], redactBlocks: [] },
    });
    assert.equal(out, 'user [REDACTED]\ndone');
    assert.equal(res.bytesOut, out.length);
  });
});
