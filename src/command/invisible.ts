// Characters that change how a command looks without showing themselves: the bidirectional controls
// reorder what follows them, the zero-width ones hide inside a word (Trojan Source). The parser takes
// them as the literal characters they are; wherever a person reads a command to decide on it (an
// approval's page and notifications, `remux approvals`, `remux policy check`), they are named instead.
// Imported by the web console too: no Node APIs here.

// Every default-ignorable code point (what fonts draw as nothing: soft hyphen, Hangul fillers, variation
// selectors, the tag characters U+E0000…) and every format character, plus the line and paragraph
// separators (U+2028/9), which break a line where no newline shows.
const INVISIBLE = /[\p{Default_Ignorable_Code_Point}\p{Cf}\p{Zl}\p{Zp}]/gu;

/** `text` with each invisible or reordering character shown as its code point, `<U+202E>`. */
export function showInvisible(text: string): string {
  return text.replace(INVISIBLE, (ch) => `<U+${(ch.codePointAt(0) as number).toString(16).toUpperCase().padStart(4, '0')}>`);
}
