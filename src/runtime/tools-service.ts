// Service: systemd units through systemctl on the host (remote/tools/service.py). Every method declares
// an execute_binary of systemctl, which it also uses to ask the unit's state: start, stop, enable and
// disable act only when the unit is not already so; restart and reload always act.
import { lazyTool, matching, method, type Method, type Operation } from './method.js';

/** What the unit is after the call. */
export interface ServiceState {
  changed: boolean;
  active: boolean;
  enabled: boolean;
}

const tool = lazyTool('Service', 'service.py');
const SYSTEMCTL: Operation[] = [{ kind: 'exec', argv: ['systemctl'] }];

/** A unit name (nginx, nginx.service, getty@tty1.service), never an option. */
const unit = (name: unknown): string => matching('the unit name', name, /^[\w:@.\\][\w:@.\\-]*$/, 'a systemd unit name (not starting with "-")');

function verb(remote: 'start' | 'stop' | 'restart' | 'reload' | 'enable' | 'disable'): Method<[name: string], ServiceState> {
  return method<[name: string], ServiceState>({
    tool,
    name: `Service.${remote}`,
    remote,
    cli: { positional: ['name'] },
    operations: ([name]) => (unit(name), SYSTEMCTL),
  });
}

export const Service = {
  start: verb('start'),
  stop: verb('stop'),
  restart: verb('restart'),
  reload: verb('reload'),
  enable: verb('enable'),
  disable: verb('disable'),
  /** Only what is given: started true/false starts/stops, enabled true/false enables/disables. */
  converge: method<[name: string, want: { started?: boolean; enabled?: boolean }], ServiceState>({
    tool,
    name: 'Service.converge',
    remote: 'converge',
    cli: { positional: ['name'], options: { started: 'boolean', enabled: 'boolean' } },
    operations: ([name]) => (unit(name), SYSTEMCTL),
    args: ([name, want]) => [name, want.started ?? null, want.enabled ?? null],
  }),
};
