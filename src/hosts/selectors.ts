// Selector facts the CLI needs before (or without) loading the inventory: kept free of heavy imports.
import { EXIT } from '../core/exit-codes.js';

/** The names of the built-in local host, this machine. */
export const LOCAL_HOST_NAMES = ['localhost', 'local'] as const;

export function isLocalHostName(name: string): boolean {
  return (LOCAL_HOST_NAMES as readonly string[]).includes(name);
}

/** A selector that names one host (no list, label, glob or `all`): its output is shown raw, like ssh. */
export function isSingleHostName(selector: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(selector) && selector !== 'all';
}

/**
 * Exit status when a selector picks nothing: an unknown single host name is like ssh's
 * "could not resolve hostname" (255); a list, label selector or glob that matches nothing is a usage error (2).
 */
export function selectionFailureExit(selector: string): number {
  return isSingleHostName(selector) ? EXIT.TRANSPORT : EXIT.USAGE;
}
