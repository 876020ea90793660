#!/usr/bin/env node
// Thin launcher: the compiled CLI lives in dist/, bundled and started with a code cache (src/cli/launch.cts).
import '../dist/src/cli/launch.cjs';
