// Recordings (of attaches, or of whole sessions): the list (GET /api/recordings, a page at a time: "More" loads the
// next) and a player replaying one asciicast v2 file in a read-only xterm.js with its own timing: play/pause,
// 1x/2x/4x, back to the start, and a bar to jump anywhere.
import { Terminal } from '@xterm/xterm';
import { parseCastEvent, type CastEvent } from '../../src/sessions/cast-event.js';
import { clampSize } from '../../src/sessions/terminal-size.js';
import { api, el, errorText, loadPage } from '../api.js';
import { fitScreen } from '../fit-screen.js';
import { utcTime } from '../format.js';
import { routeInlineStyles } from '../inline-styles.js';
import type { Page } from './page.js';

/** Whose attach or session it was: the `remux` field of a recording's header. */
interface RecordingMeta {
  host: string;
  user: string;
  session: string;
  principal: string;
  readOnly: boolean;
  /** One attach, or a whole session from its creation (sessions.record: sessions). */
  kind: 'attach' | 'session';
}

interface Recording extends RecordingMeta {
  id: string;
  started: string;
  bytes: number;
  duration: number;
}

/** A pause longer than this plays as this long: nobody wants to watch an idle terminal. */
const MAX_IDLE_S = 2;

/** The player's font size; a recording wider or taller than the page gets a smaller one (fitScreen). */
const FONT_SIZE = 13;

function size(bytes: number): string {
  return bytes < 1024 ? `${bytes} B` : bytes < 1 << 20 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / (1 << 20)).toFixed(1)} MiB`;
}

function clock(seconds: number): string {
  const s = Math.floor(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** The header's size, whose recording it is and when it started, and the events, their times with long idle pauses shortened. */
function parseCast(text: string): { cols: number; rows: number; meta: RecordingMeta; started: string; events: CastEvent[] } {
  const [first = '{}', ...rest] = text.split('\n');
  const header = JSON.parse(first) as { width?: number; height?: number; timestamp: number; remux: RecordingMeta };
  const events: CastEvent[] = [];
  let shift = 0;
  let last = 0;
  for (const line of rest) {
    const event = parseCastEvent(line);
    if (event === null) continue;
    const [t, kind, data] = event;
    shift += Math.max(0, t - last - MAX_IDLE_S);
    last = t;
    events.push([t - shift, kind, data]);
  }
  return { ...clampSize(header.width || 80, header.height || 24), meta: header.remux, started: new Date(header.timestamp * 1000).toISOString(), events };
}

class Player {
  private index = 0;
  /** Playback position in recording seconds. */
  private position = 0;
  private speed = 1;
  private timer: number | null = null;
  /** When (performance.now()) playback last resumed, and from which position. */
  private since = { at: 0, position: 0 };
  /** A seek that waits for the one before it to be drawn (a dragged bar asks faster than xterm draws). */
  private wanted: number | null = null;
  private drawing = false;

  constructor(
    private readonly term: Terminal,
    private readonly cast: { cols: number; rows: number; events: CastEvent[] },
    private readonly onChange: () => void,
  ) {
    term.resize(cast.cols, cast.rows);
  }

  get playing(): boolean {
    return this.timer !== null;
  }

  get duration(): number {
    return this.cast.events.at(-1)?.[0] ?? 0;
  }

  /** Where the screen is, or is being taken to by a seek: what the bar shows. */
  get at(): number {
    return this.wanted ?? this.now();
  }

  /** Playback's position in recording seconds. */
  private now(): number {
    return this.playing ? this.since.position + ((performance.now() - this.since.at) / 1000) * this.speed : this.position;
  }

  play(): void {
    if (this.playing) return;
    if (this.index >= this.cast.events.length) this.restart();
    this.since = { at: performance.now(), position: this.position };
    this.schedule();
    this.onChange();
  }

  pause(): void {
    if (!this.playing) return;
    this.position = this.now();
    window.clearTimeout(this.timer!);
    this.timer = null;
    this.onChange();
  }

  setSpeed(speed: number): void {
    const wasPlaying = this.playing;
    this.pause();
    this.speed = speed;
    if (wasPlaying) this.play();
  }

  restart(): void {
    this.seek(0);
  }

  /**
   * Shows the screen at `seconds` without playing up to it: forwards, the events in between are written
   * at once; backwards, the terminal is reset and everything up to there is written at once.
   */
  seek(seconds: number): void {
    this.wanted = Math.max(0, Math.min(this.duration, seconds));
    if (!this.drawing) this.jump();
  }

  private jump(): void {
    const to = this.wanted;
    if (to === null) return;
    this.wanted = null;
    const wasPlaying = this.playing;
    this.pause();
    if (this.index > 0 && this.cast.events[this.index - 1]![0] > to) {
      // RIS in the write queue, not term.reset(): output still queued would land after a direct reset.
      this.term.write('\x1bc');
      this.resize(this.cast.cols, this.cast.rows);
      this.index = 0;
    }
    this.writeUntil(to);
    this.position = to;
    this.drawing = true;
    this.term.write('', () => {
      this.drawing = false;
      this.jump();
    });
    // Playing on from the end would start again from the beginning.
    if (wasPlaying && this.index < this.cast.events.length) this.play();
    else this.onChange();
  }

  /** Writes the events up to `seconds` from where the screen is: the output between resizes as one write. */
  private writeUntil(seconds: number): void {
    let output = '';
    for (let e = this.cast.events[this.index]; e && e[0] <= seconds; e = this.cast.events[++this.index]) {
      if (e[1] === 'o') output += e[2];
      else if (e[1] === 'r') {
        const [cols, rows] = e[2].split('x').map(Number);
        if (cols && rows) {
          if (output !== '') this.term.write(output);
          output = '';
          this.resize(cols, rows);
        }
      }
    }
    if (output !== '') this.term.write(output);
  }

  /**
   * A resize in the write queue: the output before it is drawn at the size it was recorded at. At most
   * the size a watch takes: a whole session's recording has its window's sizes, and one made 10000x10000
   * (tmux resize-window, from inside the session) froze the page that played it.
   */
  private resize(cols: number, rows: number): void {
    const size = clampSize(cols, rows);
    this.term.write('', () => this.term.resize(size.cols, size.rows));
  }

  /** Writes every event that is due, then waits for the next one. */
  private schedule(): void {
    const now = this.now();
    this.writeUntil(now);
    const next = this.cast.events[this.index];
    if (next) this.timer = window.setTimeout(() => this.schedule(), ((next[0] - now) * 1000) / this.speed);
    else {
      this.position = this.duration;
      this.timer = null;
    }
    this.onChange();
  }
}

export const recordingsPage: Page = {
  route: 'recordings',
  title: 'Recordings',
  render(container, params) {
    const error = el('p', '', { class: 'error', role: 'alert' });
    const rows = el('tbody');
    const table = el('table', undefined, { class: 'recordings' });
    const head = el('tr');
    for (const h of ['', 'Started (UTC)', 'Principal', 'Host', 'Session', 'Length', 'Size']) head.append(el('th', h));
    table.append(el('thead'), rows);
    table.tHead!.append(head);
    const scroll = el('div', undefined, { class: 'scroll' });
    scroll.append(table);
    const playerBox = el('section', undefined, { class: 'player', hidden: '' });
    container.append(el('h2', 'Recordings'), error, playerBox, scroll);

    let player: Player | null = null;
    let term: Terminal | null = null;
    /** Removes what the open player listens to. */
    let unlisten: (() => void) | null = null;
    const close = (): void => {
      player?.pause();
      term?.dispose();
      unlisten?.();
      player = null;
      term = null;
      unlisten = null;
    };

    // By id, its title from its header: a recording linked from the audit page may be on a page not loaded yet.
    const open = async (id: string): Promise<void> => {
      close();
      const res = await api(`/api/recordings/${encodeURIComponent(id)}`);
      if (!res.ok) return void (error.textContent = await errorText(res));
      const cast = parseCast(await res.text());
      const r = cast.meta;
      routeInlineStyles();
      const t = new Terminal({ disableStdin: true, cursorBlink: false, convertEol: false, scrollback: 5000, fontSize: FONT_SIZE });
      term = t;
      const screen = el('div', undefined, { class: 'player-screen' });
      const title = el('h3', `${r.principal} · ${r.user}@${r.host}:${r.session} · ${utcTime(cast.started)}`);
      const playButton = el('button', 'Play', { type: 'button', class: 'play' });
      const startButton = el('button', 'From the start', { type: 'button' });
      const speed = el('select', undefined, { 'aria-label': 'speed' });
      for (const s of ['1', '2', '4']) speed.append(el('option', `${s}×`, { value: s }));
      // The position: dragged or clicked to jump there; arrow keys jump 5 s (as asciinema's player), Home and End to the ends.
      const bar = el('input', undefined, { type: 'range', class: 'seek', min: '0', step: 'any', value: '0', 'aria-label': 'position' });
      const time = el('span', '', { class: 'time' });
      const controls = el('div', undefined, { class: 'controls' });
      controls.append(playButton, startButton, speed, bar, time);
      playerBox.replaceChildren(title, screen, controls);
      playerBox.hidden = false;
      t.open(screen);
      // The whole player (its title, screen and controls) in the window's height, once scrolled to.
      const fit = (): void => fitScreen(t, screen, { width: playerBox.clientWidth, height: window.innerHeight - (playerBox.offsetHeight - screen.offsetHeight) }, FONT_SIZE);
      // The recording's size changes (its resize events, back to the start) and the window's (a phone turned).
      t.onResize(fit);
      window.addEventListener('resize', fit);
      const show = (): void => {
        playButton.textContent = p.playing ? 'Pause' : 'Play';
        const at = Math.min(p.at, p.duration);
        time.textContent = `${clock(at)} / ${clock(p.duration)}`;
        bar.value = String(at);
        bar.setAttribute('aria-valuetext', `${clock(at)} of ${clock(p.duration)}`);
      };
      const p = new Player(t, cast, show);
      player = p;
      bar.max = String(p.duration);
      bar.disabled = p.duration === 0;
      // Events can be seconds apart: the bar and the time move on between them.
      const ticker = window.setInterval(() => {
        if (p.playing) show();
      }, 250);
      unlisten = () => {
        window.removeEventListener('resize', fit);
        window.clearInterval(ticker);
      };
      playButton.addEventListener('click', () => (p.playing ? p.pause() : p.play()));
      startButton.addEventListener('click', () => p.restart());
      speed.addEventListener('change', () => p.setSpeed(Number(speed.value)));
      bar.addEventListener('input', () => p.seek(Number(bar.value)));
      bar.addEventListener('keydown', (e) => {
        const by = ({ ArrowLeft: -5, ArrowDown: -5, ArrowRight: 5, ArrowUp: 5 } as Record<string, number>)[e.key];
        if (by === undefined) return;
        e.preventDefault();
        p.seek(p.at + by);
      });
      fit();
      // Opened from far down the list (on a phone, the list is long), or below the window's middle (a phone
      // turned sideways): the whole player, fitted to the window's height, comes into sight.
      const box = playerBox.getBoundingClientRect();
      if (box.top < 0 || box.bottom > window.innerHeight) playerBox.scrollIntoView();
      p.play();
    };

    const more = el('button', 'More', { type: 'button', class: 'more', hidden: '' });
    container.append(more);
    /** Adds a page of recordings to the list. */
    const add = (list: Recording[]): void => {
      if (list.length === 0 && rows.childElementCount === 0) {
        const tr = el('tr');
        tr.append(el('td', 'No recordings yet: attaches (or whole sessions, per sessions.record) are recorded.', { colspan: '7' }));
        rows.append(tr);
      }
      for (const r of list) {
        const tr = el('tr', undefined, { 'data-id': r.id });
        // First: on a phone the table scrolls sideways, and the button stays in sight.
        const play = el('button', 'Play', { type: 'button' });
        play.addEventListener('click', () => void open(r.id));
        const cell = el('td');
        cell.append(play);
        tr.append(cell);
        for (const text of [utcTime(r.started), r.principal, r.host, `${r.user}:${r.session}${r.kind === 'session' ? ' (whole session)' : r.readOnly ? ' (read-only)' : ''}`, clock(r.duration), size(r.bytes)]) tr.append(el('td', text));
        rows.append(tr);
      }
    };
    void loadPage('/api/recordings', more, error, add);
    const wanted = params.get('id');
    if (wanted) void open(wanted);
    return close;
  },
};
