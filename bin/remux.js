#!/usr/bin/env node
// Thin launcher: the compiled CLI lives in dist/. Kept tiny so `remux --version` starts fast.
import '../dist/src/cli/main.js';
