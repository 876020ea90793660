// A throw-away tree with a fake secure PATH, real symlinks and a policy over it, for the evaluate tests.
import { chmodSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseCommand } from '../../src/command/parser.js';
import type { CommandList } from '../../src/command/types.js';
import { evaluate } from '../../src/policy/evaluate.js';
import { parsePolicies } from '../../src/policy/load.js';
import { createLocalResolver } from '../../src/policy/resolve.js';
import type { Decision, PathResolver, Policy } from '../../src/policy/types.js';

export const PROGRAMS = ['cat', 'grep', 'tail', 'head', 'sort', 'env', 'timeout', 'xargs', 'sh', 'ls', 'tee', 'nice', 'multi'];

export const POLICY_YAML = `policies:
  p:
    sandbox: true
    capabilities:
      - operation: execute_binary
        resource: cat|grep|tail|head|sort|env|timeout|xargs|sh|ls|tee|mls|\${T}/tools/*
      - operation: read_file
        resource: \${T}/data/**
      - operation: list_directory
        resource: \${T}/data/**
      - operation: write_file
        resource: \${T}/out/**/*
      - operation: read_file
        effect: deny
        reason: secrets stay here
        resource:
          - \${T}/data/secret/**
          - \${T}/linked/**
      - operation: read_file
        effect: ask
        resource: \${T}/data/ask/**
      - operation: write_stdout
        resource: { max_bytes: 4096 }
`;

export interface Fixture {
  root: string;
  resolver: PathResolver;
  policies: Map<string, Policy>;
  policy: Policy;
  /** Parses and evaluates under policy `p` (or another), cwd = root unless given. */
  check(command: string | CommandList, opts?: { cwd?: string; policy?: Policy }): Decision;
  remove(): void;
}

export function makeFixture(extraYaml = ''): Fixture {
  const root = realpathSync(mkdtempSync(join(tmpdir(), 'remux-eval-')));
  const at = (p: string): string => join(root, p);
  const file = (p: string, text = 'x\n', mode = 0o644): void => {
    mkdirSync(dirname(at(p)), { recursive: true });
    writeFileSync(at(p), text);
    chmodSync(at(p), mode);
  };
  const link = (p: string, target: string): void => {
    mkdirSync(dirname(at(p)), { recursive: true });
    symlinkSync(target, at(p));
  };

  for (const name of PROGRAMS) file(`bin/${name}`, '#!/bin/sh\n', 0o755);
  // A multi-call binary (like busybox) installed under two names.
  link('bin/mls', 'multi');
  link('bin/mrm', 'multi');
  file('data/a.log');
  file('data/sub/b.log');
  file('data/secret/key');
  file('data/ask/q');
  file('data/hidden/k');
  file('datax/f');
  file('outside/f');
  file('tools/x', '', 0o755);
  file('tools/sub/x', '', 0o755);
  file('data/cat', '#!/bin/sh\n', 0o755);
  file('evil/cat', '#!/bin/sh\n', 0o755);
  mkdirSync(at('out'));
  link('data/escape', at('outside'));
  link('data/passwd', '/etc/passwd');
  link('data/alias', 'secret');
  link('data/secret/out', at('data/a.log'));
  link('data/loop1', 'loop2');
  link('data/loop2', 'loop1');
  link('data/mycat', at('bin/cat'));
  link('out/dangle', at('outside/new'));
  link('linked', at('data/hidden'));

  const resolver = createLocalResolver({ securePath: at('bin'), whichTtlMs: 0 });
  const policies = parsePolicies(POLICY_YAML + extraYaml, 'test-policies.yaml', { T: root });
  const policy = policies.get('p') as Policy;
  return {
    root,
    resolver,
    policies,
    policy,
    check(command, opts = {}) {
      const list = typeof command === 'string' ? parseCommand(command) : command;
      const target = opts.policy ?? policy;
      // As on a host with bubblewrap: sandboxed unless the policy turned it off.
      const enforcement = target.sandbox === 'off' ? { sandbox: false as const, why: `policy ${target.name} has sandbox: false` } : { sandbox: true as const };
      return evaluate(target, list, { cwd: opts.cwd ?? root, resolver, enforcement });
    },
    remove: () => rmSync(root, { recursive: true, force: true }),
  };
}

/** One stage with the given argv, bypassing the parser (for bytes the grammar would not accept). */
export function rawCommand(argv: string[]): CommandList {
  return { items: [{ op: null, pipeline: { stages: [{ argv, redirects: [], pos: 0 }] } }] };
}
