// How the console shows the daemon's values.

/** An ISO 8601 UTC time to the second: 2026-12-04 08:00:37Z. */
export function utcTime(iso: string): string {
  return iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}
