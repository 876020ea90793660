// A live tmux session in xterm.js over the terminal WebSocket (src/gateway/terminal.ts has the
// protocol): output arrives as binary frames and is acknowledged once xterm has rendered it, so the
// daemon stops reading the session when this page falls behind. Read-only viewers see, never type.
// An attach fits the terminal to the window, and tmux the session to it. A watch cannot size the session:
// it takes the session's size (the daemon says it, and each change) and shrinks its font to fit the page.
// A daemon that goes away (`remux daemon restart`) leaves the tmux session running: the page attaches
// again once it is back, saying "reconnecting…" meanwhile (the session is handed to the next daemon).
import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
import { api, el } from '../api.js';
import { fitScreen } from '../fit-screen.js';
import { routeInlineStyles } from '../inline-styles.js';
import type { Page } from './page.js';

interface Size {
  cols: number;
  rows: number;
}

/** Why the daemon closed the socket, in words, by close code (src/gateway/terminal.ts CLOSE). */
const CLOSED: Record<number, string> = {
  1000: 'The session ended or was detached.',
  1006: 'The connection to the daemon was lost.',
  1008: 'The daemon refused this attach',
  1009: 'A message was too big.',
  1011: 'The daemon failed',
  4001: 'Logged out',
  4003: 'Not allowed',
  4004: 'No such host or session',
  4008: 'The attach reached its lifetime limit and was detached.',
  4029: 'Too many terminals open',
};

/**
 * The daemon went away (1001: it stops, as in `remux daemon restart`) or the connection dropped (1005,
 * 1006): the page attaches again, waiting longer after each failed attempt.
 */
const GONE = new Set([1001, 1005, 1006]);
const RETRY_MS = { first: 500, max: 10_000 };

/** The on-screen key bar (phones have no Esc, Tab, Ctrl or arrows). Arrows follow the cursor-key mode. */
const KEYS: { label: string; title: string; bytes: (appCursor: boolean) => string }[] = [
  { label: 'Esc', title: 'Escape', bytes: () => '\x1b' },
  { label: 'Tab', title: 'Tab', bytes: () => '\t' },
  { label: '^C', title: 'Ctrl-C', bytes: () => '\x03' },
  { label: '←', title: 'Left', bytes: (a) => (a ? '\x1bOD' : '\x1b[D') },
  { label: '↑', title: 'Up', bytes: (a) => (a ? '\x1bOA' : '\x1b[A') },
  { label: '↓', title: 'Down', bytes: (a) => (a ? '\x1bOB' : '\x1b[B') },
  { label: '→', title: 'Right', bytes: (a) => (a ? '\x1bOC' : '\x1b[C') },
  { label: 'y', title: 'y', bytes: () => 'y' },
  { label: 'n', title: 'n', bytes: () => 'n' },
  { label: '⏎', title: 'Enter', bytes: () => '\r' },
];

export const terminalPage: Page = {
  route: 'terminal',
  render(container, params) {
    routeInlineStyles();
    const host = params.get('host') ?? '';
    const user = params.get('user');
    const name = params.get('name') ?? '';
    const readOnly = params.get('readOnly') === 'true';

    const status = el('span', 'connecting…', { class: 'term-status', role: 'status' });
    const copy = el('button', 'Copy', { type: 'button', title: 'Copy the selection (Ctrl+Shift+C)' });
    const paste = el('button', 'Paste', { type: 'button', title: 'Paste (Ctrl+Shift+V)' });
    const back = el('a', '← Sessions', { href: '#/sessions' });
    const title = el('strong', `${user ? `${user}@` : ''}${host}:${name}${readOnly ? ' (read-only)' : ''}`);
    const bar = el('div', undefined, { class: 'term-bar' });
    bar.append(back, title, status, copy, paste);
    const screen = el('div', undefined, { class: 'term-screen' });
    // A watcher has no keys to press.
    const keys = el('div', undefined, { class: 'term-keys', role: 'toolbar', 'aria-label': 'keys', ...(readOnly ? { hidden: '' } : {}) });
    container.append(bar, screen, keys);
    container.classList.add('terminal-page');

    // A phone, upright or sideways, gets a smaller font: more columns before lines wrap, more rows.
    const fontSize = window.matchMedia('(max-width: 700px), (max-height: 500px)').matches ? 12 : 14;
    const term = new Terminal({ cursorBlink: true, disableStdin: readOnly, scrollback: 5000, fontFamily: 'ui-monospace, monospace', fontSize });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(screen);
    // An attach's size goes with its request; a watch waits for the session's.
    if (!readOnly) fit.fit();
    /** A watch: the terminal at the session's size, its font shrunk so that every column and row is in sight. */
    let watching = false;
    // The height below the bar (a watch has no key bar).
    const fitFont = (): void => fitScreen(term, screen, { width: container.clientWidth, height: container.getBoundingClientRect().bottom - screen.getBoundingClientRect().top }, fontSize);

    let ws: WebSocket | null = null;
    let ready = false;
    let left = false;
    /** Attempts since the socket was last ready; the wait before the next doubles with each. */
    let retries = 0;
    let retry: ReturnType<typeof setTimeout> | undefined;
    const send = (message: object): void => {
      if (ws?.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
    };
    const input = (data: string): void => {
      if (ready && !readOnly) send({ type: 'input', data });
    };

    /** The session's size, taken once the output that came before it is drawn (at the old size). */
    const takeSize = (size: Size): void => {
      output.release();
      term.write('', () => {
        term.resize(size.cols, size.rows);
        fitFont();
      });
    };
    // The screen's box changes with the window, a phone's keyboard and rotation: the terminal follows it.
    // (A watch's font follows the window's size instead: its screen is as large as the terminal.)
    const resized = new ResizeObserver(() => fit.fit());
    if (!readOnly) resized.observe(screen);
    /** The output of the socket open now (connect() makes one per socket: each acknowledges its own bytes). */
    let output: OutputPacer;

    const connect = (): void => {
      const query = new URLSearchParams({ host, name, readOnly: String(readOnly), cols: String(term.cols), rows: String(term.rows) });
      if (user) query.set('user', user);
      const socket = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/ws/terminal?${query}`);
      socket.binaryType = 'arraybuffer';
      ws = socket;
      let opened = false;
      let refused = '';
      let rendered = 0;
      output = new OutputPacer((bytes) =>
        // Acknowledged once rendered, not when received: that is what lets the daemon pause the session.
        term.write(bytes, () => {
          rendered += bytes.length;
          if (ws === socket) send({ type: 'ack', bytes: rendered });
        }),
      );
      socket.addEventListener('open', () => (opened = true));
      socket.addEventListener('message', (event: MessageEvent<ArrayBuffer | string>) => {
        if (typeof event.data !== 'string') return output.push(new Uint8Array(event.data));
        const message = JSON.parse(event.data) as { type: string; readOnly?: boolean; recording?: string | null; reason?: string; message?: string; size?: Size; cols?: number; rows?: number };
        // A refusal's whole reason comes before the close, whose own reason holds 123 bytes.
        if (message.type === 'refused') refused = message.message ?? '';
        else if (message.type === 'ready') {
          ready = true;
          retries = 0;
          status.classList.remove('closed', 'failed');
          status.textContent = `attached${message.readOnly ? ', read-only' : ''}${message.recording ? ' · recording' : ''}`;
          status.title = message.recording ? `recording ${message.recording}` : '';
          term.options.disableStdin = readOnly;
          if (message.size) {
            watching = true;
            screen.classList.add('watch');
            window.addEventListener('resize', fitFont);
            takeSize(message.size);
          } else {
            // A watch the daemon gives no size (it could not tell the session's) fits the window as an attach does.
            if (readOnly) resized.observe(screen);
            send({ type: 'resize', cols: term.cols, rows: term.rows });
          }
          if (!readOnly) term.focus();
        } else if (message.type === 'size' && message.cols && message.rows) {
          takeSize({ cols: message.cols, rows: message.rows });
        }
      });
      socket.addEventListener('close', (event) => {
        ready = false;
        output.release();
        term.options.disableStdin = true;
        if (left) return;
        const words = CLOSED[event.code] ?? `Closed (${event.code}).`;
        const reason = refused || event.reason;
        const said = reason && !words.endsWith('.') ? `${words}: ${reason}` : words;
        // Once attached (or attaching again): a first attach refused before it opened says why instead.
        if (GONE.has(event.code) && (opened || retries > 0)) return reconnect(event.reason || said);
        status.textContent = said;
        status.classList.add('closed');
        // A session that ended, or a detach, is how an attach ends: said plainly, not as a failure.
        if (event.code !== 1000) status.classList.add('failed');
      });
    };

    const reconnect = (why: string): void => {
      status.classList.remove('closed', 'failed');
      status.textContent = 'reconnecting…';
      status.title = why;
      retry = setTimeout(() => void again(why), Math.min(RETRY_MS.max, RETRY_MS.first * 2 ** retries++));
    };
    /** A refused upgrade looks like a dropped one (1006): the daemon says first whether it is back and still knows this browser. */
    const again = async (why: string): Promise<void> => {
      const me = await api('/api/me').catch(() => null);
      if (left) return;
      // 401: the session did not survive (a crash); api() has asked for the token again.
      if (me?.status === 401) return;
      if (!me?.ok) return reconnect(why);
      connect();
    };
    connect();

    term.onData(input);
    // Someone typing (keys, a paste, a phone's keyboard; the key bar and Paste below) gets the echo at
    // once. Not onData: it also carries the replies xterm gives tmux's queries on attach (DA), which
    // would unpace the first half second of a flood.
    for (const type of ['keydown', 'paste', 'input'] as const) screen.addEventListener(type, () => output.typed(), true);
    term.onBinary(input);
    term.onResize(({ cols, rows }) => {
      if (ready && !watching) send({ type: 'resize', cols, rows });
    });

    const copySelection = (): void => {
      const text = term.getSelection();
      if (text) void navigator.clipboard.writeText(text);
    };
    const pasteClipboard = (): void => {
      void navigator.clipboard.readText().then((text) => {
        output.typed();
        term.paste(text);
      });
    };
    // Ctrl+C stays the terminal's interrupt; copy and paste take Shift as in desktop terminals.
    term.attachCustomKeyEventHandler((e) => {
      if (e.type !== 'keydown' || !e.ctrlKey || !e.shiftKey) return true;
      if (e.code === 'KeyC') {
        copySelection();
        return false;
      }
      // The browser's own paste event follows and xterm handles it.
      return e.code !== 'KeyV';
    });
    // pointerdown + preventDefault: the terminal keeps focus (and a phone its keyboard) when a button is used.
    const keepFocus = (button: HTMLButtonElement): void => button.addEventListener('pointerdown', (e) => e.preventDefault());
    copy.addEventListener('click', copySelection);
    paste.addEventListener('click', pasteClipboard);
    paste.disabled = readOnly;
    keepFocus(copy);
    keepFocus(paste);
    for (const key of KEYS) {
      const button = el('button', key.label, { type: 'button', title: key.title, 'aria-label': key.title });
      button.disabled = readOnly;
      keepFocus(button);
      button.addEventListener('click', () => {
        output.typed();
        input(key.bytes(term.modes.applicationCursorKeysMode));
      });
      keys.append(button);
    }

    return () => {
      left = true;
      clearTimeout(retry);
      output.stop();
      resized.disconnect();
      window.removeEventListener('resize', fitFont);
      container.classList.remove('terminal-page');
      ws?.close(1000, 'left the page');
      term.dispose();
    };
  },
};

/**
 * Hands output to xterm.js at most every PACED_MS while it keeps coming and no one is typing: in a
 * flood, each write made xterm redraw the whole screen at the display's frame rate, and the browser took
 * the CPU tmux needed (bench/console.ts, 64 MiB: Chromium 2.1 CPU-s unpaced, 0.9 at 50 ms, 0.6 at
 * 100 ms). Output after a quiet moment, or within TYPING_MS of a keystroke (its echo, an editor's
 * redraw), goes at once.
 */
class OutputPacer {
  static readonly PACED_MS = 100;
  static readonly TYPING_MS = 500;
  private held: Uint8Array[] = [];
  private lastWrite = 0;
  private lastKey = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly write: (bytes: Uint8Array) => void) {}

  push(bytes: Uint8Array): void {
    this.held.push(bytes);
    if (this.timer !== null) return;
    const now = performance.now();
    const wait = now - this.lastKey < OutputPacer.TYPING_MS ? 0 : OutputPacer.PACED_MS - (now - this.lastWrite);
    if (wait <= 0) this.flush();
    else this.timer = setTimeout(() => this.flush(), wait);
  }

  typed(): void {
    this.lastKey = performance.now();
    this.release();
  }

  /** What is held goes now. */
  release(): void {
    if (this.timer !== null) this.flush();
  }

  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.held = [];
  }

  private flush(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.lastWrite = performance.now();
    const held = this.held;
    this.held = [];
    if (held.length === 1) return this.write(held[0] as Uint8Array);
    const all = new Uint8Array(held.reduce((n, b) => n + b.length, 0));
    let at = 0;
    for (const b of held) {
      all.set(b, at);
      at += b.length;
    }
    this.write(all);
  }
}
