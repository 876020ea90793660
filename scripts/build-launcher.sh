#!/usr/bin/env bash
# Builds bin/remux, the native launcher (native/launcher.c): it forwards `remux client …` to a running
# daemon without starting Node, and runs the Node CLI (bin/remux.js) for everything else.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(node -p 'require("./package.json").version')
"${CC:-cc}" -std=c11 -O2 -Wall -Wextra -Werror -DREMUX_VERSION="\"$version\"" -o bin/remux.tmp native/launcher.c
mv bin/remux.tmp bin/remux
