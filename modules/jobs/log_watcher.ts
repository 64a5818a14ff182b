/** File-change notifications for log followers, from one watcher per directory. */
import { dirname } from "node:path";

/**
 * Tells followers when their file changed: one `Deno.watchFs` per directory, open
 * only while someone follows a file in it.
 */
export class LogWatcher {
  #listeners = new Map<string, Set<() => void>>();
  #watchers = new Map<string, Deno.FsWatcher>();

  /** Calls `onChange` whenever the file at `path` changes; returns the unsubscribe. */
  subscribe(path: string, onChange: () => void): () => void {
    let set = this.#listeners.get(path);
    if (!set) this.#listeners.set(path, set = new Set());
    set.add(onChange);
    this.#watch(dirname(path));
    return () => {
      set.delete(onChange);
      if (set.size === 0) this.#listeners.delete(path);
      if (![...this.#listeners.keys()].some((p) => dirname(p) === dirname(path))) {
        this.#unwatch(dirname(path));
      }
    };
  }

  /** Stops watching every directory; safe to call twice. */
  close(): void {
    for (const dir of [...this.#watchers.keys()]) this.#unwatch(dir);
  }

  #unwatch(dir: string): void {
    const watcher = this.#watchers.get(dir);
    this.#watchers.delete(dir);
    try {
      watcher?.close();
    } catch {
      // already closed
    }
  }

  #watch(dir: string): void {
    if (this.#watchers.has(dir)) return;
    const watcher = Deno.watchFs(dir, { recursive: false });
    this.#watchers.set(dir, watcher);
    (async () => {
      try {
        for await (const event of watcher) {
          for (const path of event.paths) {
            for (const listener of this.#listeners.get(path) ?? []) listener();
          }
        }
      } catch {
        // closed
      }
    })();
  }
}
