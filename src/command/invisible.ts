// Characters that change how a command looks without showing themselves: the bidirectional controls
// reorder what follows them, the zero-width ones hide inside a word (Trojan Source). The parser takes
// them as the literal characters they are; wherever a person reads a command to decide on it (an
// approval's page and notifications, `remux approvals`, `remux policy check`), they are named instead.
// Imported by the web console too: no Node APIs here.

// Every default-ignorable code point (what fonts draw as nothing: soft hyphen, Hangul fillers, variation
// selectors, the tag characters U+E0000…) and every format character, plus the line and paragraph
// separators (U+2028/9), which break a line where no newline shows.
const INVISIBLE = /[\p{Default_Ignorable_Code_Point}\p{Cf}\p{Zl}\p{Zp}]/gu;

/**
 * Text a peer wrote (a runtime host's exception or log record, an agent's close reason or login name),
 * safe to print on a terminal or in a log line: control characters become escapes such as `\x1b` (ESC
 * drives the reader's terminal: OSC 52 writes its clipboard, CSI rewrites the screen; a carriage return
 * overwrites the line), newline and tab too for `oneLine` text (a newline in a log line forges the next),
 * and invisible or reordering ones are named. A peer that is compromised says what it likes.
 */
export function printable(text: string, oneLine = false): string {
  return showInvisible(text.replace(oneLine ? CONTROLS : CONTROLS_BUT_LINES, (ch) => `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`));
}

const CONTROLS = /[\u0000-\u001f\u007f-\u009f]/g;
const CONTROLS_BUT_LINES = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

/** `text` with each invisible or reordering character shown as its code point, `<U+202E>`. */
export function showInvisible(text: string): string {
  return text.replace(INVISIBLE, (ch) => `<U+${(ch.codePointAt(0) as number).toString(16).toUpperCase().padStart(4, '0')}>`);
}
