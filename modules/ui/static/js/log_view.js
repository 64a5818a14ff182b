/**
 * A job's log as people who read logs expect: it opens at the end (only the last part
 * of the file is fetched, by an HTTP range of the raw log), earlier parts come in as
 * the reader scrolls up, and only the lines near the screen are on the page. A running
 * job's new output follows live over the tail WebSocket, from where the fetched part
 * ends. ANSI colours and styles are drawn (parsed by `anser`, built as elements: no
 * HTML is injected), a line redrawn with `\r` shows its latest state, lines are
 * numbered and linkable, long lines wrap or scroll by a toggle, and search runs on the
 * head over the whole file.
 * @module
 */
import Anser from "../vendor/anser.js";
import { seg } from "./api.js";
import { h } from "./dom.js";

/** Bytes fetched at a time when opening or scrolling. */
const FETCH_BYTES = 256 * 1024;
/** Largest fetch made to find the start of a very long line. */
const MAX_FETCH_BYTES = 8 << 20;
/** Lines held in memory; past it, those farthest from the screen are let go (the head keeps them). */
const MAX_LOADED_LINES = 100_000;
/** Lines on the page at most; lines come and go in batches as the reader scrolls. */
const MAX_RENDERED_LINES = 1_000;
const RENDER_BATCH = 200;
/** Lines drawn when the view opens or jumps. */
const INITIAL_LINES = 300;
/** Lines kept on the page while following a fast writer: a screenful and some. */
const FOLLOW_LINES = 200;
/** Distance in pixels from an edge of what is drawn within which more is drawn or fetched. */
const EDGE_PX = 1_000;
/** Distance from the bottom, in pixels, within which the view keeps following new output. */
const FOLLOW_SLACK_PX = 40;
/** Characters of one line drawn at most (the raw log has the rest). */
const MAX_LINE_CHARS = 20_000;
/** Live text held for the next frame at most; past it, it is drawn at once (a hidden tab has no frames). */
const MAX_PENDING_CHARS = 4 << 20;
/** Longest wait before reconnecting a dropped tail. */
const MAX_RECONNECT_MS = 10_000;

/** A line of the log: the offset of its first byte, its text, and its number (from 0). */
/** @typedef {{ offset: number, text: string }} Line */

/**
 * A line's text as a terminal shows it: a carriage return goes back to the start of the
 * line, so what was written after the last one is what is left (a progress bar redrawn
 * a thousand times is one line in its latest state). A `\r` that ends the line (CRLF)
 * changes nothing.
 * @param {string} text
 */
function terminalLine(text) {
  if (!text.includes("\r")) return text;
  const parts = text.split("\r");
  while (parts.length > 1 && parts[parts.length - 1] === "") parts.pop();
  const last = parts[parts.length - 1];
  // A redraw shorter than the previous state overwrites only its start.
  const before = parts.length > 1 ? parts[parts.length - 2] : "";
  return !last.includes("\x1b") && !before.includes("\x1b") && before.length > last.length
    ? last + before.slice(last.length)
    : last;
}

/** OSC sequences (window titles, hyperlinks): not shown. */
// deno-lint-ignore no-control-regex
const OSC = /\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)/g;

/**
 * The 256-colour palette's colour `n` (16 to 255) as CSS.
 * @param {number} n
 */
function paletteColor(n) {
  if (n >= 232) {
    const v = 8 + (n - 232) * 10;
    return `rgb(${v}, ${v}, ${v})`;
  }
  const i = n - 16;
  const level = (/** @type {number} */ c) => (c === 0 ? 0 : 55 + c * 40);
  return `rgb(${level(Math.floor(i / 36))}, ${level(Math.floor(i / 6) % 6)}, ${level(i % 6)})`;
}

/**
 * Applies one anser colour to a span: a class for the 16 named colours, CSS otherwise.
 * @param {HTMLElement} span
 * @param {string | null} color `ansi-red`, `ansi-palette-N`, `ansi-truecolor`…
 * @param {string | null} rgb the true colour, `r, g, b`
 * @param {"color" | "backgroundColor"} property
 */
function applyColor(span, color, rgb, property) {
  if (!color) return;
  const palette = /^ansi-palette-(\d+)$/.exec(color);
  if (color === "ansi-truecolor" && rgb) span.style[property] = `rgb(${rgb})`;
  else if (palette && Number(palette[1]) >= 16) {
    span.style[property] = paletteColor(Number(palette[1]));
  } else if (palette) {
    span.classList.add(`ansi-p${palette[1]}-${property === "color" ? "fg" : "bg"}`);
  } else span.classList.add(`${color}-${property === "color" ? "fg" : "bg"}`);
}

/**
 * Appends `text` to `parent`, each occurrence of `query` (either case) in a `<mark>`.
 * @param {Node} parent
 * @param {string} text
 * @param {string} query lower case; "" for none
 */
function appendMarked(parent, text, query) {
  if (!query) {
    parent.appendChild(document.createTextNode(text));
    return;
  }
  const lower = text.toLowerCase();
  let at = 0;
  for (let i = lower.indexOf(query); i !== -1; i = lower.indexOf(query, at)) {
    if (i > at) parent.appendChild(document.createTextNode(text.slice(at, i)));
    parent.appendChild(h("mark", { text: text.slice(i, i + query.length) }));
    at = i + query.length;
  }
  if (at < text.length) parent.appendChild(document.createTextNode(text.slice(at)));
}

/**
 * A line's text as elements: ANSI styles as spans, search hits marked.
 * @param {HTMLElement} el
 * @param {string} raw
 * @param {string} query lower case; "" for none
 */
function fillLine(el, raw, query) {
  let text = terminalLine(raw);
  let cut = 0;
  if (text.length > MAX_LINE_CHARS) {
    cut = text.length - MAX_LINE_CHARS;
    text = text.slice(0, MAX_LINE_CHARS);
  }
  if (!text.includes("\x1b")) appendMarked(el, text, query);
  else {
    for (const part of Anser.ansiToJson(text.replace(OSC, ""), { use_classes: true })) {
      if (!part.content) continue;
      const plain = !part.fg && !part.bg && part.decorations.length === 0;
      if (plain) {
        appendMarked(el, part.content, query);
        continue;
      }
      const span = h("span");
      applyColor(span, part.fg, part.fg_truecolor, "color");
      applyColor(span, part.bg, part.bg_truecolor, "backgroundColor");
      for (const decoration of part.decorations) span.classList.add(`ansi-${decoration}`);
      appendMarked(span, part.content, query);
      el.appendChild(span);
    }
  }
  if (cut > 0) {
    el.appendChild(
      h("span", { class: "cut", text: ` … ${cut} more characters (download the raw log)` }),
    );
  }
}

/**
 * The UTF-8 length of `text`: the bytes it took in the log.
 * @param {string} text
 */
function utf8Length(text) {
  let n = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      n += 1; // a surrogate pair: 4 bytes for 2 code units
      i++;
    } else if (c >= 0x800) n += 2;
    else if (c >= 0x80) n += 1;
  }
  return n;
}

/**
 * A range of the raw log: its bytes, where they start, and the log's size.
 * @typedef {{ bytes: Uint8Array, start: number, size: number }} RawRange
 */

/**
 * Reads bytes of the raw log with an HTTP range (`bytes=-N` for the last N).
 * @param {string} id
 * @param {string} range
 * @returns {Promise<RawRange>}
 */
async function fetchRaw(id, range) {
  const res = await fetch(`/api/jobs/${seg(id)}/logs/raw`, {
    headers: { range, "x-requested-with": "jobhead" },
  });
  if (res.status === 416) {
    const size = Number(/\/(\d+)$/.exec(res.headers.get("content-range") ?? "")?.[1] ?? 0);
    return { bytes: new Uint8Array(), start: size, size };
  }
  if (!res.ok) throw new Error(`Reading the log failed: the head answered ${res.status}`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  const match = /^bytes (\d+)-\d+\/(\d+)$/.exec(res.headers.get("content-range") ?? "");
  if (!match) return { bytes, start: 0, size: bytes.length };
  return { bytes, start: Number(match[1]), size: Number(match[2]) };
}

/**
 * Calls a JSON route of the log.
 * @param {string} id
 * @param {string} path
 * @param {Record<string, string | number>} query
 * @returns {Promise<any>}
 */
async function logApi(id, path, query) {
  const params = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)]));
  const res = await fetch(`/api/jobs/${seg(id)}/logs/${path}?${params}`, {
    headers: { "x-requested-with": "jobhead" },
  });
  const body = await res.json();
  if (!res.ok) throw new Error(body?.error?.message ?? `The head answered ${res.status}`);
  return body;
}

/**
 * Splits bytes read at `start` into lines. Bytes before the first newline are dropped
 * when `start` is not a line's start (`fromLineStart` false), and bytes after the last
 * newline are left unless `last` says they end the log.
 * @param {Uint8Array} bytes
 * @param {number} start
 * @param {{ fromLineStart: boolean, last: boolean }} options
 * @returns {{ lines: Line[], end: number }} end: the offset after the last line taken
 */
function splitLines(bytes, start, { fromLineStart, last }) {
  const decoder = new TextDecoder();
  /** @type {Line[]} */
  const lines = [];
  let at = 0;
  if (!fromLineStart) {
    const nl = bytes.indexOf(10);
    if (nl === -1) return { lines, end: start };
    at = nl + 1;
  }
  for (let nl = bytes.indexOf(10, at); nl !== -1; nl = bytes.indexOf(10, at)) {
    lines.push({ offset: start + at, text: decoder.decode(bytes.subarray(at, nl)) });
    at = nl + 1;
  }
  if (last && at < bytes.length) {
    lines.push({ offset: start + at, text: decoder.decode(bytes.subarray(at)) });
    at = bytes.length;
  }
  return { lines, end: start + at };
}

/**
 * @typedef {"connecting" | "live" | "ended" | "reconnecting" | "gone" | "paused"} TailState
 */

/** The log view of one job. */
export class LogView {
  #id;
  /** @type {Line[]} */
  #lines = [];
  /** Number (from 0) of `#lines[0]`. */
  #first = 0;
  /** Offset after the last whole line held. */
  #end = 0;
  /** The log's size as last seen. */
  #size = 0;
  /** Whether the job writes no more: the bytes after the last newline are a line. */
  #complete = false;
  /** The running job's last line while it has no newline yet. */
  #partial = "";
  /** @type {LogTail | undefined} while the lines held reach the live end of a running log */
  #tail;
  #onState;
  /** `#lines[#from]` to `#lines[#to - 1]` are on the page. */
  #from = 0;
  #to = 0;
  /** @type {string[]} live text not drawn yet */
  #pending = [];
  #pendingChars = 0;
  #frame = 0;
  #scrollFrame = 0;
  #following = true;
  #busy = false;
  #query = "";
  /** Whether a search is under way (a press meanwhile is ignored). */
  #searching = false;
  /** @type {{ line: number, offset: number } | undefined} the search hit shown */
  #hit;
  /** @type {number | undefined} the linked line */
  #target;
  /** @type {Promise<[RawRange, { line: number, offset: number }]> | undefined} */
  #prefetched;
  #content = h("div", { class: "log-lines" });
  #partialEl = h("div", { class: "log-line partial" });
  #box = h(
    "div",
    { class: "log", tabindex: "0", role: "log", "aria-label": "Log output" },
    this.#content,
  );
  #follow = h("button", { class: "follow", hidden: true, text: "↓ Follow new output" });
  #searchInput = h("input", {
    id: "log-search",
    type: "search",
    placeholder: "Search the whole log",
    "aria-label": "Search the log",
  });
  #searchState = h("span", { class: "search-state", role: "status" });
  #wrapToggle = h("input", { type: "checkbox", id: "log-wrap" });
  /** The element to put on the page. */
  el;
  /** `g` `l` (main.js): the end of the log, not just of what the page holds. */
  #onLogEnd = (/** @type {Event} */ event) => {
    event.preventDefault();
    this.scrollToEnd();
  };

  /**
   * @param {string} id the job
   * @param {object} options
   * @param {(state: TailState, detail?: string) => void} options.onState told how the live tail is doing
   * @param {() => Promise<boolean>} options.jobExists asked before reconnecting the tail
   */
  constructor(id, { onState, jobExists }) {
    this.#id = id;
    this.#onState = onState;
    this.jobExists = jobExists;
    const prev = h("button", { type: "button", id: "log-prev", text: "↑ Previous" });
    const next = h("button", { type: "button", id: "log-next", text: "↓ Next" });
    const form = h(
      "form",
      { class: "log-search", role: "search" },
      this.#searchInput,
      prev,
      next,
      this.#searchState,
    );
    const download = h("a", {
      class: "button",
      id: "log-download",
      href: `/api/jobs/${seg(id)}/logs/raw`,
      download: `${id}.log`,
      text: "Download raw log",
    });
    const wrap = h(
      "label",
      { class: "wrap-toggle" },
      this.#wrapToggle,
      " Wrap long lines",
    );
    this.el = h(
      "div",
      { class: "log-wrap" },
      h("div", { class: "log-tools" }, form, h("span", { class: "spacer" }), wrap, download),
      this.#box,
      this.#follow,
    );
    this.#wrapToggle.checked = localStorage.getItem("jobhead.logWrap") !== "false";
    this.#box.classList.toggle("wrap", this.#wrapToggle.checked);
    this.#wrapToggle.addEventListener("change", () => {
      const anchor = this.#topLineEl();
      this.#box.classList.toggle("wrap", this.#wrapToggle.checked);
      localStorage.setItem("jobhead.logWrap", String(this.#wrapToggle.checked));
      anchor?.scrollIntoView({ block: "start" });
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.search(this.#searchInput.value, "forward");
    });
    next.addEventListener("click", () => this.search(this.#searchInput.value, "forward"));
    prev.addEventListener("click", () => this.search(this.#searchInput.value, "backward"));
    this.#box.addEventListener("scroll", () => {
      this.#scrollFrame ||= requestAnimationFrame(() => this.#onScroll());
    });
    this.#follow.addEventListener("click", () => this.scrollToEnd());
    addEventListener("jobhead:log-end", this.#onLogEnd);
    this.#content.addEventListener("click", (event) => {
      const link = /** @type {HTMLElement} */ (event.target).closest("a.ln");
      if (!link) return;
      event.preventDefault();
      const line = Number(link.parentElement?.dataset.line);
      this.#target = line;
      const url = `${location.origin}${location.pathname}#/jobs/${seg(id)}?line=${line + 1}`;
      history.replaceState(null, "", url);
      navigator.clipboard?.writeText(url).catch(() => {});
      this.#rerender();
      this.#searchState.textContent = `Link to line ${line + 1} copied`;
    });
  }

  /**
   * Opens the log: at line `line` (from 1) when given, else at its end; a running job
   * then follows live. Resolves when the lines are on the page.
   * @param {{ running: boolean, line?: number }} options
   */
  async open({ running, line }) {
    this.#complete = !running;
    if (line !== undefined) {
      const at = await logApi(this.#id, "lines", { line: Math.max(0, line - 1) });
      this.#target = at.line;
      await this.#openAt(at.line, at.offset);
      return;
    }
    const [range, at] = await (this.#prefetched ?? this.prefetchEnd());
    this.#prefetched = undefined;
    this.#size = range.size;
    const { lines, end } = splitLines(range.bytes, range.start, {
      fromLineStart: range.start === 0,
      last: !running,
    });
    let first = 0;
    if (lines.length > 0 && lines[0].offset > 0) {
      first = at.offset === range.start
        ? at.line + 1 // the first line, partial, is left out
        : (await logApi(this.#id, "lines", { offset: lines[0].offset })).line;
    }
    this.#replace(lines, first, end);
    this.#draw(Math.max(0, lines.length - INITIAL_LINES), lines.length);
    if (running) this.#attach();
    this.#following = true;
    this.#follow.hidden = true;
    this.#box.scrollTop = this.#box.scrollHeight;
  }

  /**
   * Starts reading the end of the log (and the number of its first line) before `open`
   * is called, while the page is still asking about the job.
   * @returns {Promise<[RawRange, { line: number, offset: number }]>}
   */
  prefetchEnd() {
    // Both at once: a growing log may have moved on in between, which `open` notices.
    this.#prefetched = Promise.all([
      fetchRaw(this.#id, `bytes=-${FETCH_BYTES}`),
      logApi(this.#id, "lines", { offset: -FETCH_BYTES }),
    ]);
    this.#prefetched.catch(() => {}); // `open` reports it
    return this.#prefetched;
  }

  /** Jumps to the end and follows new output again. */
  async scrollToEnd() {
    this.#following = true;
    this.#follow.hidden = true;
    if (!this.#tail && (!this.#complete || this.#end < this.#size)) {
      // The lines held stop short of the end: open at the end again.
      await this.open({ running: !this.#complete });
      return;
    }
    if (this.#to < this.#lines.length) {
      this.#draw(Math.max(0, this.#lines.length - INITIAL_LINES), this.#lines.length);
    }
    this.#box.scrollTop = this.#box.scrollHeight;
  }

  /** Stops drawing and closes the tail (the view is leaving the page). */
  dispose() {
    removeEventListener("jobhead:log-end", this.#onLogEnd);
    cancelAnimationFrame(this.#frame);
    cancelAnimationFrame(this.#scrollFrame);
    this.#tail?.close();
    this.#tail = undefined;
  }

  /**
   * Finds the next (or previous) line holding `query` in the whole log, on the head, and
   * scrolls to it; from the line last found, else from the top of the screen.
   * @param {string} query
   * @param {"forward" | "backward"} direction
   */
  async search(query, direction) {
    if (!query || this.#searching) return;
    this.#searching = true;
    try {
      await this.#search(query, direction);
    } catch (err) {
      this.#searchState.textContent = `Search failed: ${/** @type {Error} */ (err).message}`;
    } finally {
      this.#searching = false;
    }
  }

  /**
   * @param {string} query
   * @param {"forward" | "backward"} direction
   */
  async #search(query, direction) {
    if (query.toLowerCase() !== this.#query) {
      this.#query = query.toLowerCase();
      this.#hit = undefined;
      this.#rerender();
    }
    const forward = direction === "forward";
    const here = this.#hit?.offset ?? this.#topLine()?.offset ?? 0;
    this.#searchState.textContent = "Searching…";
    let from = forward ? (this.#hit ? here + 1 : here) : here;
    let wrapped = false;
    for (;;) {
      const result = await logApi(this.#id, "search", { q: query, from, direction });
      const hit = /** @type {{ line: number, offset: number }[]} */ (result.matches).find((m) =>
        !this.#hit || m.offset !== this.#hit.offset
      );
      if (hit) {
        this.#hit = hit;
        this.#searchState.textContent = `Line ${hit.line + 1}${wrapped ? " (wrapped)" : ""}`;
        await this.#show(hit.line, hit.offset);
        return;
      }
      if (result.next !== null) {
        from = result.next;
        continue;
      }
      if (wrapped) break;
      wrapped = true;
      from = forward ? 0 : result.size;
    }
    this.#searchState.textContent = this.#hit ? "No other match" : "No match";
  }

  /**
   * Scrolls to line `line` (from 0) starting at byte `offset`, fetching around it when
   * it is not held.
   * @param {number} line
   * @param {number} offset
   */
  async #show(line, offset) {
    const index = line - this.#first;
    if (index >= 0 && index < this.#lines.length && this.#lines[index].offset === offset) {
      if (index < this.#from || index >= this.#to) {
        this.#draw(Math.max(0, index - INITIAL_LINES / 2), index + INITIAL_LINES / 2);
      } else this.#rerender();
    } else await this.#openAt(line, offset);
    this.#following = false;
    this.#follow.hidden = false;
    this.#lineEl(line)?.scrollIntoView({ block: "center" });
  }

  /**
   * Holds the lines around line `line` at `offset`, and no more the live end.
   * @param {number} line
   * @param {number} offset
   */
  async #openAt(line, offset) {
    this.#detach();
    if (!this.#complete) this.#onState("paused");
    const start = Math.max(0, offset - FETCH_BYTES / 2);
    const range = await fetchRaw(this.#id, `bytes=${start}-${offset + FETCH_BYTES / 2 - 1}`);
    this.#size = range.size;
    const atEnd = range.start + range.bytes.length >= range.size;
    const { lines, end } = splitLines(range.bytes, range.start, {
      fromLineStart: range.start === 0,
      last: atEnd && this.#complete,
    });
    const index = lines.findIndex((l) => l.offset === offset);
    this.#replace(lines, line - Math.max(0, index), end);
    this.#draw(Math.max(0, index - INITIAL_LINES / 2), index + INITIAL_LINES / 2);
    this.#following = false;
    this.#follow.hidden = false;
    this.#lineEl(line)?.scrollIntoView({ block: "center" });
    this.#onScroll();
  }

  /**
   * @param {Line[]} lines
   * @param {number} first
   * @param {number} end
   */
  #replace(lines, first, end) {
    this.#lines = lines;
    this.#first = first;
    this.#end = end;
    this.#partial = "";
    this.#from = this.#to = 0;
    this.#content.replaceChildren();
  }

  /** Follows the running job's output from the end of the lines held. */
  #attach() {
    this.#tail?.close();
    this.#partial = "";
    this.#tail = new LogTail(this.#id, this.#end, {
      onText: (text) => this.#append(text),
      onState: (state, detail) => {
        if (state === "ended") this.#complete = true;
        this.#onState(state, detail);
      },
      jobExists: () => this.jobExists(),
    });
    this.#tail.connect();
  }

  /** Stops following: the lines held no longer reach the end. */
  #detach() {
    if (!this.#tail) return;
    this.#tail.close();
    this.#tail = undefined;
    this.#pending = [];
    this.#pendingChars = 0;
    this.#partial = "";
    this.#partialEl.remove();
    if (!this.#complete) this.#onState("paused");
  }

  /**
   * Adds live text at the end; it shows at the next animation frame.
   * @param {string} text
   */
  #append(text) {
    this.#pending.push(text);
    this.#pendingChars += text.length;
    if (this.#pendingChars > MAX_PENDING_CHARS) this.#flush();
    else this.#frame ||= requestAnimationFrame(() => this.#flush());
  }

  #flush() {
    cancelAnimationFrame(this.#frame);
    this.#frame = 0;
    const text = this.#partial + this.#pending.join("");
    this.#pending = [];
    this.#pendingChars = 0;
    const parts = text.split("\n");
    this.#partial = parts.pop() ?? "";
    const added = parts.length;
    for (const part of parts) {
      this.#lines.push({ offset: this.#end, text: part });
      this.#end += utf8Length(part) + 1;
    }
    this.#size = Math.max(this.#size, this.#end + utf8Length(this.#partial));
    if (this.#following) {
      const length = this.#lines.length;
      if (this.#lines.length > MAX_LOADED_LINES + RENDER_BATCH) {
        this.#dropFirst(this.#lines.length - MAX_LOADED_LINES);
      }
      if (added > 0 && (this.#to < length - added || added >= FOLLOW_LINES)) {
        // Lines that would scroll past at once are not drawn at all.
        this.#draw(Math.max(0, this.#lines.length - FOLLOW_LINES), this.#lines.length);
      } else if (added > 0) {
        this.#drawBelow(this.#lines.length - this.#to);
        this.#trimRendered(true);
      }
      this.#drawPartial();
      this.#box.scrollTop = this.#box.scrollHeight;
    } else {
      if (this.#to === this.#lines.length - added) this.#drawBelow(added);
      this.#drawPartial();
      this.#limitLoaded();
    }
  }

  #drawPartial() {
    if (!this.#partial || this.#to < this.#lines.length) {
      this.#partialEl.remove();
      return;
    }
    this.#partialEl.replaceChildren();
    fillLine(this.#partialEl, this.#partial, this.#query);
    this.#content.appendChild(this.#partialEl);
  }

  /**
   * Drops the first `n` lines held (above the screen).
   * @param {number} n
   */
  #dropFirst(n) {
    const onPage = Math.max(0, Math.min(n, this.#to) - this.#from);
    if (onPage > 0) this.#removeAbove(onPage);
    this.#lines.splice(0, n);
    this.#first += n;
    this.#from = Math.max(0, this.#from - n);
    this.#to = Math.max(0, this.#to - n);
  }

  /** Lets go of lines far from the screen while the reader is away from the end. */
  #limitLoaded() {
    const extra = this.#lines.length - MAX_LOADED_LINES;
    if (extra <= 0) return;
    if (this.#from > this.#lines.length - this.#to) this.#dropFirst(Math.min(extra, this.#from));
    else {
      this.#detach();
      const keep = Math.max(this.#to, this.#lines.length - extra);
      if (keep < this.#lines.length) this.#end = this.#lines[keep].offset;
      this.#lines.length = keep;
    }
  }

  /**
   * Puts lines `from` to `to` (indexes into what is held) on the page, alone.
   * @param {number} from
   * @param {number} to
   */
  #draw(from, to) {
    this.#from = Math.max(0, Math.min(from, this.#lines.length));
    this.#to = Math.max(this.#from, Math.min(to, this.#lines.length));
    const fragment = document.createDocumentFragment();
    for (let i = this.#from; i < this.#to; i++) fragment.appendChild(this.#lineElement(i));
    this.#content.replaceChildren(fragment);
    this.#drawPartial();
  }

  /** Draws the lines on the page again (the search or the linked line changed). */
  #rerender() {
    const anchor = this.#topLineEl();
    const top = anchor ? anchor.getBoundingClientRect().top : 0;
    this.#draw(this.#from, this.#to);
    const again = anchor && this.#lineEl(Number(anchor.dataset.line));
    if (again) this.#box.scrollTop += again.getBoundingClientRect().top - top;
  }

  /**
   * The element of line `i` of those held.
   * @param {number} i
   */
  #lineElement(i) {
    const number = this.#first + i;
    const classes = ["log-line"];
    if (this.#hit?.line === number) classes.push("hit");
    if (this.#target === number) classes.push("target");
    const el = h(
      "div",
      { class: classes.join(" "), "data-line": String(number) },
      h("a", {
        class: "ln",
        href: `#/jobs/${seg(this.#id)}?line=${number + 1}`,
        title: "Copy a link to this line",
        tabindex: "-1", // a thousand links are not a thousand tab stops
        text: String(number + 1),
      }),
    );
    const text = h("span", { class: "lt" });
    fillLine(text, this.#lines[i].text, this.#query);
    el.appendChild(text);
    return el;
  }

  /**
   * The element of line `line` (from 0), if it is on the page.
   * @param {number} line
   * @returns {HTMLElement | null}
   */
  #lineEl(line) {
    return this.#content.querySelector(`[data-line="${line}"]`);
  }

  /** The first line element at least partly on screen. */
  #topLineEl() {
    const top = this.#box.getBoundingClientRect().top;
    for (const child of this.#content.children) {
      const el = /** @type {HTMLElement} */ (child);
      if (el.getBoundingClientRect().bottom > top) return el;
    }
    return undefined;
  }

  /** The first line on screen. */
  #topLine() {
    const el = this.#topLineEl();
    if (!el?.dataset.line) return undefined;
    return this.#lines[Number(el.dataset.line) - this.#first];
  }

  /**
   * Draws `n` more lines above those on the page, keeping what is on screen in place.
   * @param {number} n
   */
  #drawAbove(n) {
    const from = Math.max(0, this.#from - n);
    if (from === this.#from) return;
    const fragment = document.createDocumentFragment();
    for (let i = from; i < this.#from; i++) fragment.appendChild(this.#lineElement(i));
    const height = this.#content.scrollHeight;
    this.#content.prepend(fragment);
    this.#box.scrollTop += this.#content.scrollHeight - height;
    this.#from = from;
  }

  /**
   * Draws `n` more lines below those on the page.
   * @param {number} n
   */
  #drawBelow(n) {
    const to = Math.min(this.#lines.length, this.#to + n);
    const fragment = document.createDocumentFragment();
    for (let i = this.#to; i < to; i++) fragment.appendChild(this.#lineElement(i));
    this.#partialEl.remove();
    this.#content.appendChild(fragment);
    this.#to = to;
  }

  /**
   * Removes the first `n` lines on the page, keeping what is on screen in place.
   * @param {number} n
   */
  #removeAbove(n) {
    const height = this.#content.scrollHeight;
    for (let i = 0; i < n && this.#content.firstChild; i++) this.#content.firstChild.remove();
    this.#box.scrollTop -= height - this.#content.scrollHeight;
    this.#from += n;
  }

  /**
   * Keeps at most MAX_RENDERED_LINES on the page, removing those farthest from the
   * screen, or the first ones when `following`.
   * @param {boolean} [following]
   */
  #trimRendered(following = false) {
    const extra = this.#to - this.#from - (following ? 2 * FOLLOW_LINES : MAX_RENDERED_LINES);
    if (extra <= 0) return;
    const box = this.#box;
    const below = box.scrollHeight - box.scrollTop - box.clientHeight;
    if (following || box.scrollTop > below) this.#removeAbove(extra);
    else {
      this.#partialEl.remove();
      for (let i = 0; i < extra; i++) this.#content.lastElementChild?.remove();
      this.#to -= extra;
    }
  }

  async #onScroll() {
    this.#scrollFrame = 0;
    const box = this.#box;
    const below = box.scrollHeight - box.scrollTop - box.clientHeight;
    const atEnd = this.#to === this.#lines.length && below <= FOLLOW_SLACK_PX &&
      (!!this.#tail || this.#end >= this.#size);
    this.#following = atEnd && !!this.#tail;
    this.#follow.hidden = atEnd;
    this.#follow.textContent = this.#complete ? "↓ End of log" : "↓ Follow new output";
    if (this.#busy) return;
    this.#busy = true;
    try {
      if (box.scrollTop < EDGE_PX) {
        if (this.#from > 0) this.#drawAbove(RENDER_BATCH);
        else if (this.#lines.length > 0 && this.#lines[0].offset > 0) await this.#fetchEarlier();
      } else if (below < EDGE_PX) {
        if (this.#to < this.#lines.length) this.#drawBelow(RENDER_BATCH);
        else if (!this.#tail && this.#end < this.#size) await this.#fetchLater();
        else if (!this.#tail && !this.#complete) this.#attach();
      }
      this.#trimRendered();
    } finally {
      this.#busy = false;
    }
    // More may be needed (a fast scroll, a short fetch): look again.
    const again = box.scrollHeight - box.scrollTop - box.clientHeight;
    if (
      (box.scrollTop < EDGE_PX && (this.#from > 0 || (this.#lines[0]?.offset ?? 0) > 0)) ||
      (again < EDGE_PX && !this.#following &&
        (this.#to < this.#lines.length || (!this.#tail && this.#end < this.#size)))
    ) this.#scrollFrame ||= requestAnimationFrame(() => this.#onScroll());
  }

  /** Fetches the lines before those held. */
  async #fetchEarlier() {
    const before = this.#lines[0].offset;
    for (let bytes = FETCH_BYTES;; bytes *= 4) {
      const start = Math.max(0, before - bytes);
      const range = await fetchRaw(this.#id, `bytes=${start}-${before - 1}`);
      const { lines } = splitLines(range.bytes, range.start, {
        fromLineStart: start === 0,
        last: true,
      });
      if (lines.length === 0 && start > 0 && bytes < MAX_FETCH_BYTES) continue;
      if (lines.length === 0) {
        // One line longer than MAX_FETCH_BYTES: show its end.
        lines.push({ offset: range.start, text: new TextDecoder().decode(range.bytes) });
      }
      this.#lines.unshift(...lines);
      this.#first -= lines.length;
      this.#from += lines.length;
      this.#to += lines.length;
      this.#drawAbove(RENDER_BATCH);
      this.#limitLoaded();
      return;
    }
  }

  /** Fetches the lines after those held (after a jump into the middle of the log). */
  async #fetchLater() {
    const range = await fetchRaw(this.#id, `bytes=${this.#end}-${this.#end + FETCH_BYTES - 1}`);
    this.#size = range.size;
    const atEnd = range.start + range.bytes.length >= range.size;
    const { lines, end } = splitLines(range.bytes, range.start, {
      fromLineStart: true,
      last: atEnd && this.#complete,
    });
    this.#lines.push(...lines);
    this.#end = end;
    this.#drawBelow(RENDER_BATCH);
    if (this.#from > this.#lines.length - this.#to) this.#limitLoaded();
    if (atEnd && !this.#complete) this.#attach();
  }
}

/** The log tail WebSocket of one job from a byte offset, resumed from the last byte received. */
export class LogTail {
  #id;
  #handlers;
  /** Where the next byte received belongs: where a reconnection resumes. */
  #offset;
  #attempt = 0;
  /** @type {WebSocket | undefined} */
  #socket;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #timer;
  #closed = false;

  /**
   * @param {string} id the job
   * @param {number} offset the first byte wanted
   * @param {object} handlers
   * @param {(text: string) => void} handlers.onText given the text as it comes
   * @param {(state: TailState, detail?: string) => void} handlers.onState told how the tail is doing
   * @param {() => Promise<boolean>} handlers.jobExists asked before reconnecting: a deleted job is not retried
   */
  constructor(id, offset, handlers) {
    this.#id = id;
    this.#offset = offset;
    this.#handlers = handlers;
  }

  /** Connects (again), from the last byte received. */
  connect() {
    if (this.#closed) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const url = `${scheme}//${location.host}/api/jobs/${
      encodeURIComponent(this.#id)
    }/logs/tail?offset=${this.#offset}`;
    this.#handlers.onState(this.#attempt === 0 ? "connecting" : "reconnecting");
    const socket = new WebSocket(url);
    this.#socket = socket;
    socket.onopen = () => this.#handlers.onState("live");
    socket.onmessage = (event) => {
      const text = String(event.data);
      // Frames carry whole UTF-8 characters, so the text's length in UTF-8 is the bytes read.
      this.#offset += utf8Length(text);
      this.#attempt = 0;
      this.#handlers.onText(text);
    };
    socket.onclose = (event) => {
      if (this.#closed || socket !== this.#socket) return;
      if (event.code === 1000) {
        this.#handlers.onState("ended");
        return;
      }
      this.#retry();
    };
  }

  /** Closes the socket and stops reconnecting (safe to call twice). */
  close() {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#socket?.close();
  }

  async #retry() {
    this.#attempt++;
    const waitMs = Math.min(MAX_RECONNECT_MS, 250 * 2 ** this.#attempt);
    this.#handlers.onState("reconnecting", `in ${Math.round(waitMs / 100) / 10} s`);
    if (!(await this.#handlers.jobExists().catch(() => true))) {
      this.#handlers.onState("gone");
      return;
    }
    this.#timer = setTimeout(() => this.connect(), waitMs);
  }
}
