// A signed flat apt repository in a directory, built the way Debian's tools do it: packages with
// dpkg-deb, the index with dpkg-scanpackages, a Release with its SHA256 sums, InRelease clear-signed with
// a throwaway gpg key. Served as file:DIR (Suites: ./).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface AptRepo {
  dir: string;
  /** The signing key, ASCII-armored. */
  key: string;
  /** Adds a package (name, version, one file it installs) and publishes the index again. */
  add(name: string, version: string, file: string, content: string): void;
  remove(): void;
}

export function aptRepo(): AptRepo {
  const base = mkdtempSync(join(tmpdir(), 'remux-apt-'));
  // apt reads file: repositories as its _apt user.
  chmodSync(base, 0o755);
  const dir = join(base, 'repo');
  const gnupg = join(base, 'gnupg');
  mkdirSync(dir, { mode: 0o755 });
  mkdirSync(gnupg, { mode: 0o700 });
  const gpg = (...args: string[]): Buffer => execFileSync('gpg', ['--homedir', gnupg, '--batch', '--quiet', '--pinentry-mode', 'loopback', '--passphrase', '', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  gpg('--quick-gen-key', 'remux test repository <repo@remux.test>', 'ed25519', 'sign', 'never');
  const key = gpg('--armor', '--export').toString();

  const publish = (): void => {
    const packages = execFileSync('dpkg-scanpackages', ['--multiversion', '.', '/dev/null'], { cwd: dir, stdio: ['ignore', 'pipe', 'ignore'] });
    writeFileSync(join(dir, 'Packages'), packages);
    const sum = createHash('sha256').update(packages).digest('hex');
    writeFileSync(join(dir, 'Release'), `Origin: remux-test\nLabel: remux-test\nDate: ${new Date().toUTCString()}\nSHA256:\n ${sum} ${packages.length} Packages\n`);
    rmSync(join(dir, 'InRelease'), { force: true });
    gpg('--clearsign', '--output', join(dir, 'InRelease'), join(dir, 'Release'));
  };

  return {
    dir,
    key,
    add(name, version, file, content) {
      const pkg = join(base, `${name}-${version}`);
      mkdirSync(join(pkg, 'DEBIAN'), { recursive: true });
      mkdirSync(join(pkg, file, '..'), { recursive: true });
      writeFileSync(join(pkg, file), content);
      writeFileSync(join(pkg, 'DEBIAN/control'), `Package: ${name}\nVersion: ${version}\nArchitecture: all\nMaintainer: remux tests <t@remux.test>\nDescription: a package of the remux tests\n`);
      execFileSync('dpkg-deb', ['--root-owner-group', '-Zgzip', '-b', pkg, join(dir, `${name}_${version}_all.deb`)], { stdio: 'ignore' });
      publish();
    },
    remove: () => rmSync(base, { recursive: true, force: true }),
  };
}
