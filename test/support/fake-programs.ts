// Stand-ins for programs that cannot run here, to be placed first on a runtime's PATH: this machine runs
// no systemd (PID 1 is not systemd) and is no Arch system. Each records its argv, one line per run, and
// keeps its state in files, so a tool's idempotency shows in what it ran.

/** systemctl: is-active, is-enabled, start, stop, restart, reload, enable, disable; state under /var/lib/fake-systemd. */
export const FAKE_SYSTEMCTL = `#!/bin/sh
echo "$*" >> /var/log/fake-systemctl.log
s=/var/lib/fake-systemd; mkdir -p $s/active $s/enabled
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

/** pacman: -Q, -Qu, -S [--needed], -R, -Sy; installed packages under /var/lib/fake-pacman, sync dbs under /var/lib/pacman/sync. */
export const FAKE_PACMAN = `#!/bin/sh
echo "$*" >> /var/log/fake-pacman.log
s=/var/lib/fake-pacman; mkdir -p $s
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
