#!/usr/bin/env bash
# Builds the native programs (run by `npm run build`):
#   bin/remux                 the launcher (native/launcher.c): forwards `remux client …` to a running
#                             daemon without starting Node, and runs the Node CLI for everything else;
#   bin/remux-sandbox-enter   runs a stage inside a long-lived bubblewrap sandbox (native/sandbox-enter.c);
#   bin/remux-spawner         started once by remux, starts the stages of its pipelines (native/spawner.c).
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(node -p 'require("./package.json").version')
cc=("${CC:-cc}" -std=gnu11 -O2 -Wall -Wextra -Werror)
"${cc[@]}" -DREMUX_VERSION="\"$version\"" -o bin/remux.tmp native/launcher.c
mv bin/remux.tmp bin/remux
# No C library (native/syscall.h): it runs for every sandboxed stage, and libc's start-up was most of its cost.
"${cc[@]}" -static -nostdlib -ffreestanding -fno-stack-protector -fno-builtin -Wl,-z,noseparate-code -s -o bin/remux-sandbox-enter.tmp native/sandbox-enter.c
mv bin/remux-sandbox-enter.tmp bin/remux-sandbox-enter
"${cc[@]}" -o bin/remux-spawner.tmp native/spawner.c
mv bin/remux-spawner.tmp bin/remux-spawner
