/**
 * The page's one connection to `GET /api/events`. Views subscribe to job, actor and
 * deployment changes, and to `resync`: after a dropped stream (or a `reset`), changes may have been
 * missed, so each view reads its data again.
 * @module
 */

/** @typedef {"job" | "actor" | "deployment" | "resync"} LiveTopic */

/** Job, actor and deployment changes from the head, with reconnection. */
export class Live {
  /** @type {Map<LiveTopic, Set<(data: any) => void>>} */
  #listeners = new Map();
  /** @type {EventSource | undefined} */
  #source;
  /** @type {(connected: boolean) => void} */
  #onState;

  /** @param {(connected: boolean) => void} onState told when the stream connects or drops */
  constructor(onState) {
    this.#onState = onState;
  }

  /**
   * Opens the stream; resolves at its first `ready` event, or when it fails (the page
   * then works without live updates until the browser reconnects it).
   * @returns {Promise<void>}
   */
  open() {
    this.close();
    const source = new EventSource("/api/events");
    this.#source = source;
    return new Promise((resolve) => {
      source.addEventListener("ready", () => {
        this.#onState(true);
        // Views that loaded while the stream was down (or not yet up) may have missed
        // changes: every ready, the first one included, has them read their data again.
        this.#emit("resync", {});
        resolve();
      });
      source.addEventListener("reset", () => this.#emit("resync", {}));
      source.addEventListener("error", () => {
        this.#onState(false);
        resolve();
      });
      for (const topic of /** @type {const} */ (["job", "actor", "deployment"])) {
        source.addEventListener(topic, (event) => {
          this.#emit(topic, JSON.parse(/** @type {MessageEvent} */ (event).data));
        });
      }
    });
  }

  /** Closes the stream (safe to call twice). */
  close() {
    this.#source?.close();
    this.#source = undefined;
  }

  /** Whether the stream is open now. */
  get connected() {
    return this.#source?.readyState === EventSource.OPEN;
  }

  /**
   * Subscribes to a topic; the returned function unsubscribes.
   * @param {LiveTopic} topic
   * @param {(data: any) => void} listener
   * @returns {() => void}
   */
  on(topic, listener) {
    const set = this.#listeners.get(topic) ?? new Set();
    set.add(listener);
    this.#listeners.set(topic, set);
    return () => set.delete(listener);
  }

  /**
   * @param {LiveTopic} topic
   * @param {unknown} data
   */
  #emit(topic, data) {
    for (const listener of this.#listeners.get(topic) ?? []) {
      try {
        listener(data);
      } catch (err) {
        console.error(`jobhead: a ${topic} listener failed:`, err);
      }
    }
  }
}
