// Logger and Quit: the interpreter itself; they touch nothing on the host (no operations: the
// principal's scope must reach the host, and the call is audited).
import { lazyTool, method, oneOf } from './method.js';

const LEVELS = ['debug', 'info', 'warning', 'error', 'critical'] as const;
type Level = (typeof LEVELS)[number];
const loggerTool = lazyTool('Logger', 'logger.py');

export const Logger = {
  /** A record logged on the host: it comes back through onLog like every record a tool logs with Python's logging. */
  log: method<[level: Level, message: string, name?: string], null>({
    tool: loggerTool,
    name: 'Logger.log',
    remote: 'log',
    cli: { positional: ['level', 'message', 'name?'] },
    operations: ([level]) => (oneOf('level', level, LEVELS), []),
    args: ([level, message, name]) => [level, String(message), name ?? 'remux'],
  }),
  /** Records below this level are not sent (default info); returns the level now in force. */
  setLevel: method<[level: Level], string>({
    tool: loggerTool,
    name: 'Logger.setLevel',
    remote: 'setLevel',
    cli: { positional: ['level'] },
    operations: ([level]) => (oneOf('level', level, LEVELS), []),
  }),
};

export const Quit = {
  /** Ends the interpreter once this result is sent: what still runs there is cancelled and its processes killed. */
  now: method<[], { pid: number }>({
    tool: lazyTool('Quit', 'quit.py'),
    name: 'Quit.now',
    remote: 'quit',
    cli: { positional: [] },
    operations: () => [],
  }),
};
