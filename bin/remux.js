#!/usr/bin/env node
// Thin launcher: the compiled CLI lives in dist/, bundled and started with a code cache (launch.ts).
import '../dist/src/cli/launch.js';
