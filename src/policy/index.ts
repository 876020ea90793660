// The policy engine's public surface.
export type * from './types.js';
export { evaluate, explain, sandboxSpec, unknownPolicyMessage } from './evaluate.js';
export type { EvalContext } from './evaluate.js';
export { compileGlob, globError, globPrefix, GlobError } from './glob.js';
export { loadPolicies, loadPolicyFile, parsePolicies } from './load.js';
export { createLocalResolver, localResolver, ResolveError } from './resolve.js';
export type { LocalResolverOptions } from './resolve.js';
export { ANY_PROGRAM, compileRedaction, isOperation, KNOWN_OPERATIONS, PolicyFileSchema, POLICY_NAME } from './schema.js';
export { addPolicyToFile, renderTemplate, TEMPLATE_NAMES, TEMPLATES } from './templates.js';
export type { Template, TemplateCapability, TemplateName } from './templates.js';
