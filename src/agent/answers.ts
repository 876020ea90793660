// What an agent tells its gateway about this machine's paths and programs. The gateway's policy check asks
// where paths lead and where programs are (serve.ts: resolve, file-resolve); the agent answers only within
// its own policy: a path that policy could grant some operation on, a program it could let run. Anything
// else gets an error naming that policy, so a gateway (or one taken over) learns neither whether
// /root/secret exists nor where links outside the owner's policy lead; the gateway's check then denies.
import { posix } from 'node:path';
import { mayReach, mayRunByName } from '../policy/evaluate.js';
import type { PathResolver, Policy } from '../policy/types.js';

export class OwnAnswers {
  /** The error answered instead of what is outside the policy. */
  readonly pathRefusal: string;
  readonly programRefusal: string;

  /** `policy`: this machine's own (its default_policy); undefined when its policies file lacks it, and nothing is answered. */
  constructor(
    private readonly policy: Policy | undefined,
    private readonly resolver: PathResolver,
    agent: string,
    policyName: string,
  ) {
    const own = policy ? `agent ${agent}'s own policy ${policyName}` : `agent ${agent} has no policy ${policyName} (its default_policy), so it`;
    this.pathRefusal = `${own} gives no access there`;
    this.programRefusal = `${own} lets no program of that name run`;
  }

  /**
   * `answer` when the gateway may learn where `asked` leads: `real`, where it led here, is a path the
   * policy reaches (or a program it lets run by name, found there by the secure PATH). When resolving
   * failed (null: a loop, no permission), when `asked` is itself such a path; not past a `..`, which
   * after a link could lead anywhere.
   */
  path<A>(asked: string, real: string | null, answer: A): A | { error: string } {
    const policy = this.policy;
    if (policy === undefined) return { error: this.pathRefusal };
    const shown =
      real === null
        ? !asked.split('/').includes('..') && mayReach(policy, posix.resolve(asked))
        : mayReach(policy, real) || [posix.basename(asked), posix.basename(real)].some((name) => mayRunByName(policy, name) && this.resolver.which(name) === real);
    return shown ? answer : { error: this.pathRefusal };
  }

  /** `answer` when the policy may let the program `name` run: by its name, or by where the secure PATH finds it (`real`). */
  program<A>(name: string, real: string | null, answer: A): A | { error: string } {
    const policy = this.policy;
    const shown = policy !== undefined && (mayRunByName(policy, name) || (real !== null && mayReach(policy, real)));
    return shown ? answer : { error: this.programRefusal };
  }
}
