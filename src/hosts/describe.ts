// A host in words, as `remux hosts list` and the console's Hosts page say it, from one row of
// `hosts list --json` (GET /api/hosts). No Node imports: the console's bundle uses it too.

/**
 * How commands are enforced on a host: in the OS sandbox, with static checks only (an SSH host without
 * bubblewrap), not at all for sandboxed policies (this machine without bubblewrap: they are refused),
 * or not known yet.
 */
export interface Enforcement {
  mode: 'sandbox' | 'static' | 'none' | 'unknown';
  /** The bubblewrap version, or why there is no sandbox, or why it is not known. */
  detail: string;
  warning: string | null;
}

/** Where a host is: USER@ADDRESS[:PORT] over SSH, where its agent dialled in from (known only while connected), or this machine. */
export function hostAddress(h: { transport: string; address: string | null; user: string | null; port: number | null }): string {
  if (h.transport === 'agent') return `agent${h.address ? ` from ${h.address}` : ''}`;
  if (h.transport !== 'ssh' || h.address === null) return '(this machine)';
  const host = h.address.includes(':') ? `[${h.address}]` : h.address;
  return `${h.user}@${host}${h.port === 22 || h.port === null ? '' : `:${h.port}`}`;
}

export function enforcementText(e: Enforcement): string {
  const what = { sandbox: 'sandbox', static: 'static checks only', none: 'no sandbox, sandboxed policies refused', unknown: 'unknown' }[e.mode];
  // Not known yet: the first words say why ("not probed yet"); --json has the whole of it.
  return `${what} (${e.mode === 'unknown' ? e.detail.split(':')[0] : e.detail})`;
}
