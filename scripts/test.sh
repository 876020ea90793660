#!/usr/bin/env bash
# The one test command (README: `npm test`). On a fresh Debian machine it installs what the tests
# need, builds (tsc: the build is the typecheck), lints, and runs every test against real processes.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/npm-env.sh
source scripts/npm-env.sh

# program -> Debian package the tests need.
declare -A NEEDED=([tmux]=tmux [chromium]=chromium [sshd]=openssh-server [ssh]=openssh-client [bwrap]=bubblewrap [socat]=socat [rg]=ripgrep [ip]=iproute2 [python3]=python3 [make]=make [g++]=g++ [strace]=strace [sudo]=sudo [dpkg-scanpackages]=dpkg-dev [gpg]=gnupg [zsh]=zsh [fish]=fish)
missing=()
for program in "${!NEEDED[@]}"; do
  command -v "$program" >/dev/null 2>&1 || [ -x "/usr/sbin/$program" ] || missing+=("${NEEDED[$program]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing packages: ${missing[*]}; install them with: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo "installing test dependencies: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Node dependencies (native ones compile from source: see scripts/npm-env.sh), only when the lockfile changed.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm_ci_from_source
fi

rm -rf dist
npm run --silent build
npm run --silent lint
# Name the test files: Node 20 would also run every other .js under a test/ directory (fixtures, helpers).
mapfile -t tests < <(find dist/test -name '*.test.js' | sort)
# A test that hangs, or a file left with an open socket after a failure, must fail with its name
# rather than hold the run until CI's limit: every test, suite and file gets a deadline (Node 20
# applies it to a whole file too, and then kills the file's process; the longest takes 1 to 2
# minutes here, run beside others). Not --test-force-exit: with a process per file it drops results (nodejs/node#64833).
# The tests start shells (tmux panes): they must not run this user's dotfiles. Here root's .bashrc
# runs `pyenv init`, whose rehash lock made shells started at once wait up to a minute (a killed one
# leaves the lock behind for every later shell): the run gets an empty HOME of its own.
test_home=$(mktemp -d)
trap 'rm -rf "$test_home"' EXIT
# The report is thousands of lines and CI may keep only its end: the failures are said again there.
report="$test_home/report.tap"
status=0
HOME="$test_home" node --test --test-concurrency="${REMUX_TEST_CONCURRENCY:-2}" --test-timeout="${REMUX_TEST_TIMEOUT_MS:-600000}" "${tests[@]}" | tee "$report" || status=$?
if [ "$status" -ne 0 ]; then
  echo "# failed (said again from the report above, each with its error):"
  # A failed test's line and its YAML block (error, location, stack), whichever file it came from.
  awk '/^ *not ok / { keep = 1 } keep { print } keep && /^ *\.\.\.$/ { keep = 0 }' "$report" | head -n 400
fi
exit "$status"
