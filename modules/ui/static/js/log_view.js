/**
 * A job's log, live: a WebSocket tail that resumes from the last byte it got after a
 * dropped connection, shown in a box that keeps up with a multi-MB log. Text is added
 * once per animation frame, in blocks of whole lines (a new block does not make the
 * browser lay the earlier ones out again), and the oldest blocks leave the page once it
 * holds more than MAX_SHOWN_CHARS.
 * @module
 */
import { formatBytes, h } from "./dom.js";

/** Characters of log kept on the page; older output is dropped from view (not from the head). */
const MAX_SHOWN_CHARS = 1_000_000;
/** Distance from the bottom, in pixels, within which the view keeps following new output. */
const FOLLOW_SLACK_PX = 40;
/** Longest wait before reconnecting a dropped tail. */
const MAX_RECONNECT_MS = 10_000;

/** The log box: appends text, caps what it shows, follows the end unless the reader scrolled up. */
export class LogView {
  /** @type {string[]} */
  #pending = [];
  #pendingChars = 0;
  #frame = 0;
  #shownChars = 0;
  #droppedChars = 0;
  #following = true;
  /** The last line while it has no newline yet: replaced as it grows. */
  #partial = "";
  #partialEl = h("div", { class: "chunk partial" });
  #box = h("div", { class: "log", tabindex: "0", role: "log", "aria-label": "Log output" });
  #trimmed = h("p", { class: "trimmed", hidden: true });
  #follow = h("button", { class: "follow", hidden: true, text: "↓ Follow new output" });
  /** The element to put on the page. */
  el = h("div", { class: "log-wrap" });

  constructor() {
    this.#box.append(this.#partialEl);
    this.el.append(this.#trimmed, this.#box, this.#follow);
    this.#box.addEventListener("scroll", () => {
      const box = this.#box;
      this.#following = box.scrollHeight - box.scrollTop - box.clientHeight <= FOLLOW_SLACK_PX;
      this.#follow.hidden = this.#following;
    });
    this.#follow.addEventListener("click", () => this.scrollToEnd());
  }

  /** Whether the view sticks to the end of the log. */
  get following() {
    return this.#following;
  }

  /** Jumps to the end and follows new output again. */
  scrollToEnd() {
    this.#following = true;
    this.#follow.hidden = true;
    this.#box.scrollTop = this.#box.scrollHeight;
  }

  /**
   * Adds text at the end; it shows at the next animation frame.
   * @param {string} text
   */
  append(text) {
    this.#pending.push(text);
    this.#pendingChars += text.length;
    // Far more than fits on the page: keep only what will be shown.
    if (this.#pendingChars > 2 * MAX_SHOWN_CHARS) this.#squeezePending();
    this.#frame ||= requestAnimationFrame(() => this.#flush());
  }

  /** Stops drawing (the view is leaving the page). */
  dispose() {
    cancelAnimationFrame(this.#frame);
  }

  #squeezePending() {
    const text = this.#pending.join("");
    const keep = text.slice(-MAX_SHOWN_CHARS);
    this.#droppedChars += text.length - keep.length + this.#partial.length;
    this.#partial = "";
    this.#pending = [keep];
    this.#pendingChars = keep.length;
  }

  #flush() {
    this.#frame = 0;
    let text = this.#partial + this.#pending.join("");
    this.#pending = [];
    this.#pendingChars = 0;
    if (text.length > MAX_SHOWN_CHARS) {
      this.#droppedChars += text.length - MAX_SHOWN_CHARS;
      text = text.slice(-MAX_SHOWN_CHARS);
    }
    const end = text.lastIndexOf("\n") + 1;
    if (end > 0) {
      this.#box.insertBefore(
        h("div", { class: "chunk", text: text.slice(0, end) }),
        this.#partialEl,
      );
      this.#shownChars += end;
    }
    this.#partial = text.slice(end);
    this.#partialEl.textContent = this.#partial;
    this.#trim();
    if (this.#following) this.#box.scrollTop = this.#box.scrollHeight;
  }

  #trim() {
    while (this.#shownChars > MAX_SHOWN_CHARS && this.#box.firstChild !== this.#partialEl) {
      const first = /** @type {HTMLElement} */ (this.#box.firstChild);
      const length = first.textContent?.length ?? 0;
      first.remove();
      this.#shownChars -= length;
      this.#droppedChars += length;
    }
    if (this.#droppedChars > 0) {
      this.#trimmed.hidden = false;
      this.#trimmed.textContent =
        `Earlier output (${
          formatBytes(this.#droppedChars)
        }) is not shown here, to keep the page quick. The whole log is on the head: ` +
        "GET /api/jobs/<id>/logs reads any range of it.";
    }
  }
}

/**
 * @typedef {"connecting" | "live" | "ended" | "reconnecting" | "gone"} TailState
 */

/** The log tail WebSocket of one job, resumed from the last byte received. */
export class LogTail {
  #id;
  #view;
  #onState;
  /** Bytes received so far: where a reconnection resumes. */
  #offset = 0;
  #attempt = 0;
  /** @type {WebSocket | undefined} */
  #socket;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #timer;
  #closed = false;
  #encoder = new TextEncoder();

  /**
   * @param {string} id the job
   * @param {LogView} view where the text goes
   * @param {(state: TailState, detail?: string) => void} onState told how the tail is doing
   * @param {() => Promise<boolean>} jobExists asked before reconnecting: a deleted job is not retried
   */
  constructor(id, view, onState, jobExists) {
    this.#id = id;
    this.#view = view;
    this.#onState = onState;
    this.jobExists = jobExists;
  }

  /** Bytes received so far. */
  get offset() {
    return this.#offset;
  }

  /** Connects (again), from the last byte received. */
  connect() {
    if (this.#closed) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const url = `${scheme}//${location.host}/api/jobs/${
      encodeURIComponent(this.#id)
    }/logs/tail?offset=${this.#offset}`;
    this.#onState(this.#attempt === 0 ? "connecting" : "reconnecting");
    const socket = new WebSocket(url);
    this.#socket = socket;
    socket.onopen = () => this.#onState("live");
    socket.onmessage = (event) => {
      const text = String(event.data);
      // Frames carry whole UTF-8 characters, so the text's length in UTF-8 is the bytes read.
      this.#offset += this.#encoder.encode(text).length;
      this.#attempt = 0;
      this.#view.append(text);
    };
    socket.onclose = (event) => {
      if (this.#closed || socket !== this.#socket) return;
      if (event.code === 1000) {
        this.#onState("ended");
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
    this.#onState("reconnecting", `in ${Math.round(waitMs / 100) / 10} s`);
    if (!(await this.jobExists().catch(() => true))) {
      this.#onState("gone");
      return;
    }
    this.#timer = setTimeout(() => this.connect(), waitMs);
  }
}
