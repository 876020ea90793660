// The sizes a terminal of remux takes: an attach's, a watch's, a recording's and the console's player's
// (no Node imports: the console bundles it). A size from elsewhere (a client, tmux: a window may be
// 10000x10000) is clamped, so that no terminal, xterm.js's in a browser above all, is made that large.

export const TERMINAL_LIMITS = { minCols: 2, maxCols: 1000, minRows: 1, maxRows: 500 } as const;

export interface TerminalSize {
  cols: number;
  rows: number;
}

export function clampSize(cols: number, rows: number): TerminalSize {
  const clamp = (n: number, min: number, max: number): number => Math.min(max, Math.max(min, Math.round(n)));
  return { cols: clamp(cols, TERMINAL_LIMITS.minCols, TERMINAL_LIMITS.maxCols), rows: clamp(rows, TERMINAL_LIMITS.minRows, TERMINAL_LIMITS.maxRows) };
}
