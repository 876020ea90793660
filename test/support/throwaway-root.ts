// A throwaway Debian root for tests that change a system (packages, users, sudoers): this machine's own
// / seen through an overlay whose upper layer is a temporary directory, in a private mount namespace,
// chrooted into. Whatever runs there writes only into `upper`; the machine's own system never changes,
// and no network or debootstrap is needed. Files placed under `upper` beforehand (a fake systemctl) are
// part of the root. Needs root (unshare -m, mount).
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { TestContext } from 'node:test';

// $1: the directory with upper/, work/, merged/ and binds (directories of this machine seen as they are,
// not through the overlay, which may not show changes made to its lower layer since); the rest: the command to run chrooted (stage 0).
// The machine's apt sources are dropped: nothing is fetched from the network.
const ENTER = `set -e
d=$1; shift
mount -t overlay overlay -o "lowerdir=/,upperdir=$d/upper,workdir=$d/work" "$d/merged"
mount --rbind /dev "$d/merged/dev"
mount -t proc proc "$d/merged/proc"
while read -r b; do mount --bind "$b" "$d/merged$b"; done < "$d/binds"
rm -f "$d/merged/etc/apt/sources.list" "$d/merged"/etc/apt/sources.list.d/*
exec chroot "$d/merged" "$@"`;

export interface ThrowawayRoot {
  /** The upper layer: every file the root changed or added, at its path under here. */
  upper: string;
  /** argvPrefix for connectProcess: the runtime's stage 0 runs inside the root. */
  argvPrefix: string[];
  /** The root's file `path`, as the root changed it (under upper), for assertions. */
  changed(path: string): string;
  /** Puts a file into the root before it is entered (a fake program: mode 0755). */
  place(path: string, content: string, mode?: number): void;
}

export function throwawayRoot(t: TestContext, binds: readonly string[] = []): ThrowawayRoot {
  const dir = mkdtempSync(join(tmpdir(), 'remux-root-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const d of ['upper', 'work', 'merged']) mkdirSync(join(dir, d));
  writeFileSync(join(dir, 'binds'), binds.map((b) => `${b}\n`).join(''));
  const upper = join(dir, 'upper');
  return {
    upper,
    argvPrefix: ['unshare', '-m', '--propagation', 'private', '--', 'sh', '-c', ENTER, 'sh', dir],
    changed: (path) => join(upper, path),
    place(path, content, mode = 0o644) {
      const file = join(upper, path);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, content);
      chmodSync(file, mode);
    },
  };
}
