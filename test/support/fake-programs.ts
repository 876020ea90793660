// Stand-ins for programs that cannot run here, to be placed first on a runtime's PATH: this machine runs
// no systemd (PID 1 is not systemd) and is no Arch system. Each records its argv, one line per run, and
// keeps its state in files, so a tool's idempotency shows in what it ran.

/** systemctl: is-active, is-enabled, start, stop, restart, reload, enable, disable; argv in STATE/log, units under STATE. */
export const fakeSystemctl = (state: string): string => `#!/bin/sh
s=${state}; mkdir -p $s/active $s/enabled
echo "$*" >> $s/log
verb=$1; shift; [ "$1" = -- ] && shift; unit=$1
case $verb in
  is-active) if [ -e $s/active/$unit ]; then echo active; else echo inactive; exit 3; fi ;;
  is-enabled) if [ -e $s/enabled/$unit ]; then echo enabled; else echo disabled; exit 1; fi ;;
  start|restart|reload) touch $s/active/$unit ;;
  stop) rm -f $s/active/$unit ;;
  enable) touch $s/enabled/$unit ;;
  disable) rm -f $s/enabled/$unit ;;
  *) echo "fake systemctl: $verb?" >&2; exit 1 ;;
esac
`;

/**
 * pacman: -Q, -Qu, -S [--needed], -R, -Sy; argv in STATE/log, installed packages under STATE (STATE/NAME.new:
 * an update is available), sync databases under /var/lib/pacman/sync (STATE/.db-stale: -Sy changes one).
 */
export const fakePacman = (state: string): string => `#!/bin/sh
s=${state}; mkdir -p $s
echo "$*" >> $s/log
op=; names=
for a in "$@"; do case $a in -Q|-Qu|-S|-R|-Sy) op=$a ;; -*) ;; *) names="$names $a" ;; esac; done
case $op in
  -Q) rc=0; for n in $names; do if [ -e $s/$n ]; then echo "$n $(cat $s/$n)"; else echo "error: package '$n' was not found" >&2; rc=1; fi; done; exit $rc ;;
  -Qu) for n in $names; do [ -e $s/$n.new ] && echo "$n $(cat $s/$n) -> $(cat $s/$n.new)"; done; exit 0 ;;
  -S) for n in $names; do if [ -e $s/$n.new ]; then mv $s/$n.new $s/$n; else echo 1.0-1 > $s/$n; fi; done ;;
  -R) for n in $names; do rm -f $s/$n; done ;;
  -Sy) mkdir -p /var/lib/pacman/sync; [ -e $s/.db-stale ] && { date +%s%N > /var/lib/pacman/sync/core.db; rm $s/.db-stale; } ; echo ":: Synchronizing package databases..." ;;
esac
`;

/**
 * pacman-key: --list-keys FPR (exit 1 when the keyring lacks it), --add (the armored key on stdin, kept
 * as STATE/added.asc), --lsign-key FPR (fails unless a key was added: then FPR is in the keyring, STATE/keys);
 * argv in STATE/log.
 */
export const fakePacmanKey = (state: string): string => `#!/bin/sh
s=${state}; mkdir -p $s/keys
echo "$*" >> $s/log
case $1 in
  --list-keys) [ -e "$s/keys/$2" ] || { echo "error: key \\"$2\\" not found" >&2; exit 1; }; echo "pub   rsa4096 $2" ;;
  --add) cat > $s/added.asc; grep -q -- '-----BEGIN PGP PUBLIC KEY BLOCK-----' $s/added.asc || { echo "no valid OpenPGP data found" >&2; exit 1; } ;;
  --lsign-key) [ -e $s/added.asc ] || { echo "key $2 not found" >&2; exit 1; }; touch "$s/keys/$2" ;;
  *) echo "fake pacman-key: $1?" >&2; exit 1 ;;
esac
`;
