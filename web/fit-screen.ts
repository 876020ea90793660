// A terminal that is not sized to its page (a recording, a session someone else sized) shown whole: its
// font shrinks until its columns fit the page's width and its rows the height left for it. Used by the
// recordings player and a watch.
import type { Terminal } from '@xterm/xterm';

/** Below this the text is unreadable even zoomed: the screen scrolls after all. */
const MIN_FONT_SIZE = 4;

/**
 * Shrinks the font so the terminal's columns fit `room.width` pixels and its rows `room.height`, never
 * above `fontSize` (its normal size): the whole screen in sight, which a pinch zooms into, rather than a
 * strip that scrolls (a tall session on a phone turned sideways scrolled inside its box). `screen` is the
 * element around xterm's, as large as its content (CSS width: fit-content).
 */
export function fitScreen(term: Terminal, screen: HTMLElement, room: { width: number; height: number }, fontSize: number): void {
  const cells = screen.querySelector<HTMLElement>('.xterm-screen');
  if (!cells?.offsetWidth || !cells.offsetHeight) return;
  // The scrollbars beside the cells (and the screen's padding) keep their size whatever the font's.
  const width = room.width - (screen.scrollWidth - cells.offsetWidth);
  const height = room.height - (screen.scrollHeight - cells.offsetHeight);
  const scale = (): number => Math.min(width / cells.offsetWidth, height / cells.offsetHeight);
  const set = (size: number): number => (term.options.fontSize = Math.max(MIN_FONT_SIZE, Math.min(fontSize, Math.floor(size * 10) / 10)));
  let size = set((term.options.fontSize ?? fontSize) * scale());
  // Cells are whole pixels, so the estimate can miss by a pixel a row: a little smaller until it fits.
  for (let tries = 0; tries < 10 && size > MIN_FONT_SIZE && scale() < 1; tries++) size = set(Math.min(size * scale(), size - 0.1));
}
