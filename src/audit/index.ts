export { AuditStore, AuditStoreError, cursorOf, GENESIS_HASH, HASHED_COLUMNS, hashRow } from './store.js';
export { redactArgv, redactText, REDACTED } from './redact.js';
export { beginLevel, endLevel, levelsShown } from './level.js';
export { AUDIT_LEVELS } from './types.js';
export type * from './types.js';
