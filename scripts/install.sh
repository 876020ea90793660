#!/usr/bin/env bash
# The README's set-up command: installs remux from this checkout, puts `remux` on the PATH,
# creates $REMUX_HOME on its defaults (SQLite audit store, the local host, an admin principal whose
# token is printed once), starts the daemon (with the web console on https://127.0.0.1:7777/) and
# runs a first policy-checked, audited command on this machine through it.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/npm-env.sh
source scripts/npm-env.sh

if ! command -v node >/dev/null 2>&1 || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "remux needs Node.js 20 or newer (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi
# Native modules build from source; the OS sandbox needs bubblewrap; agent sessions (sandbox-runtime) also socat and ripgrep.
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  pkgs=()
  command -v bwrap >/dev/null 2>&1 || pkgs+=(bubblewrap)
  command -v socat >/dev/null 2>&1 || pkgs+=(socat)
  command -v rg >/dev/null 2>&1 || pkgs+=(ripgrep)
  command -v tmux >/dev/null 2>&1 || pkgs+=(tmux)
  command -v make >/dev/null 2>&1 || pkgs+=(make)
  command -v g++ >/dev/null 2>&1 || pkgs+=(g++)
  command -v python3 >/dev/null 2>&1 || pkgs+=(python3)
  if [ ${#pkgs[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
  fi
fi

npm_ci_from_source
npm run --silent build
npm link --no-audit --no-fund >/dev/null
echo "installed: $(command -v remux) ($(remux --version))"
# Tab completion in bash, where bash-completion looks for a user's own (it loads it at the first `remux <Tab>`).
completions="${XDG_DATA_HOME:-$HOME/.local/share}/bash-completion/completions"
mkdir -p "$completions" && remux completion bash > "$completions/remux"
echo "bash completion: $completions/remux (zsh, fish: remux completion --help)"

remux config init
# Run again over an install whose daemon runs: restarted on the new build (its checks first; tmux and agent
# sessions, open questions and browser logins carry over), rather than left on the old one.
if remux daemon status >/dev/null 2>&1; then
  remux daemon restart
else
  remux daemon start
fi
echo
echo '$ remux client run localhost --policy read_only -- "uptime"'
remux client run localhost --policy read_only -- 'uptime'
echo
remux audit ls --limit 5
remux audit verify
remux status health
echo
echo 'remux is running. Next: remux hosts add NAME USER@ADDRESS, then remux client run NAME -- uptime (see README.md).'
echo "Web console: https://127.0.0.1:7777/ (log in with the admin token printed above; the browser asks once to trust remux's own certificate)."
