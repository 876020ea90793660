// Characters that change how a command looks without showing themselves: the bidirectional controls
// reorder what follows them, the zero-width ones hide inside a word (Trojan Source). The parser takes
// them as the literal characters they are; wherever a person reads a command to decide on it (an
// approval's page and notifications, `remux approvals`, `remux policy check`), they are named instead.
// Imported by the web console too: no Node APIs here.

const INVISIBLE = /[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/g;

/** `text` with each invisible or reordering character shown as its code point, `<U+202E>`. */
export function showInvisible(text: string): string {
  return text.replace(INVISIBLE, (ch) => `<U+${ch.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}>`);
}
