// A terminal that is not sized to its page (a recording, a session someone else sized) shown whole: its
// font shrinks until its columns fit the page's width. Used by the recordings player and a watch.
import type { Terminal } from '@xterm/xterm';

/** Below this the text is unreadable even zoomed: the screen scrolls sideways after all. */
const MIN_FONT_SIZE = 4;

/**
 * Shrinks the font so the terminal's columns fit `width` pixels, never above `fontSize` (its normal
 * size): the whole screen in sight, which a pinch zooms into, rather than a strip that scrolls sideways.
 * `screen` is the element around xterm's, as wide as its content (CSS width: fit-content).
 */
export function fitWidth(term: Terminal, screen: HTMLElement, width: number, fontSize: number): void {
  const cells = screen.querySelector<HTMLElement>('.xterm-screen');
  if (!cells?.offsetWidth) return;
  // The scrollbar beside the cells (and the screen's padding) keep their width whatever the font's.
  const fixed = screen.scrollWidth - cells.offsetWidth;
  const size = Math.floor(((term.options.fontSize ?? fontSize) * (width - fixed) * 10) / cells.offsetWidth) / 10;
  term.options.fontSize = Math.max(MIN_FONT_SIZE, Math.min(fontSize, size));
}
