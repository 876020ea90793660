#!/usr/bin/env bash
# `npm run bench`: builds, installs the anchors the benchmarks compare against (as root, with apt-get,
# when missing: OpenSSH, parallel-ssh, Ansible, Fabric, Mitogen), then runs every benchmark or those named.
# Usage: npm run bench [-- NAME… (parser policy audit startup ssh fleet daemon-memory sandbox sessions console spawn approvals mcp agent agents watcher runtime)] [-- --json]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/npm-env.sh
source scripts/npm-env.sh

declare -A ANCHORS=([/usr/sbin/sshd]=openssh-server [/usr/bin/ssh]=openssh-client [/usr/bin/parallel-ssh]=pssh [/usr/bin/ansible]=ansible-core [/usr/lib/python3/dist-packages/fabric]=python3-fabric [/usr/lib/python3/dist-packages/mitogen]=python3-mitogen)
missing=()
for path in "${!ANCHORS[@]}"; do [ -e "$path" ] || missing+=("${ANCHORS[$path]}"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing benchmark anchors: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || echo "some anchors did not install; their rows will say so"
  else
    echo "anchors not installed (their rows will say so): ${missing[*]}"
  fi
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm_ci_from_source
fi
npm run --silent build
node dist/bench/run.js "$@"
