/**
 * Views that modules contribute (docs/modules.md, "Dashboard views"): the head serves
 * each one's ES module at `/ui/modules/<module>/<id>.js`, and the page shows it at
 * `#/m/<module>/<id>`, mounted through the contract below. A view that fails to load,
 * mount or unmount shows an error box; the rest of the dashboard goes on working.
 * @module
 */
import { api } from "./api.js";
import { alertBox, h } from "./dom.js";

/** @typedef {import("./main.js").ViewContext} ViewContext */
/** @typedef {import("./live.js").LiveTopic} LiveTopic */

/**
 * A view of `GET /api/ui/views`.
 * @typedef {object} ModuleViewEntry
 * @property {string} module
 * @property {string} id
 * @property {string} title
 * @property {string} url
 */

/**
 * What a module's view gets in `mount(el, ctx)`.
 * @typedef {object} ModuleViewContext
 * @property {typeof api} api calls the head's API with the page's credentials
 * @property {{ on(topic: LiveTopic, listener: (data: any) => void): () => void }} live
 *   the page's event stream; subscriptions end by themselves at unmount
 * @property {(path: string) => void} navigate goes to another view, e.g. `/jobs/a1`
 */

/**
 * The exports of a module's view.
 * @typedef {object} ModuleViewExports
 * @property {(el: HTMLElement, ctx: ModuleViewContext) => void | Promise<void>} mount
 * @property {() => void} [unmount]
 */

/**
 * The views modules contribute; none when the list cannot be read.
 * @returns {Promise<ModuleViewEntry[]>}
 */
export async function listModuleViews() {
  try {
    return await api("/api/ui/views");
  } catch (err) {
    console.error("jobhead: cannot list the modules' views:", err);
    return [];
  }
}

/**
 * Shows a module's view, or an error box when there is no such view or it fails.
 * @param {ViewContext} ctx
 * @param {ModuleViewEntry | undefined} entry
 * @param {string} name `<module>/<id>` from the address, for messages
 */
export function moduleView(ctx, entry, name) {
  const errors = alertBox();
  errors.el.classList.add("module-view-error");
  const body = h("div", { class: "module-view-body" });
  const el = h(
    "section",
    { class: "view module-view", "data-view": name },
    errors.el,
    body,
  );
  /** @type {(() => void)[]} */
  const subscriptions = [];
  /** @type {ModuleViewExports | undefined} */
  let mounted;
  let disposed = false;
  /** @param {string} what @param {unknown} err */
  const fail = (what, err) => {
    console.error(`jobhead: view ${name} ${what}:`, err);
    errors.show(`The view "${entry?.title ?? name}" ${what}: ${describe(err)}`);
  };

  /** @type {ModuleViewContext} */
  const viewCtx = {
    api,
    live: {
      on(topic, listener) {
        const off = ctx.live.on(topic, listener);
        subscriptions.push(off);
        return off;
      },
    },
    navigate(path) {
      location.hash = path.startsWith("#") ? path : `#${path}`;
    },
  };

  async function mount() {
    if (!entry) {
      errors.show(`No view "${name}": its module is not loaded on this head.`);
      return;
    }
    /** @type {ModuleViewExports} */
    let exports;
    try {
      exports = await import(entry.url);
      if (typeof exports.mount !== "function") throw new Error("it exports no mount()");
    } catch (err) {
      fail("failed to load", err);
      return;
    }
    if (disposed) return;
    try {
      mounted = exports;
      await exports.mount(body, viewCtx);
    } catch (err) {
      fail("failed", err);
    }
  }

  mount();
  return {
    el,
    title: entry?.title ?? name,
    dispose() {
      disposed = true;
      for (const off of subscriptions) off();
      try {
        mounted?.unmount?.();
      } catch (err) {
        console.error(`jobhead: view ${name} failed to unmount:`, err);
      }
    },
  };
}

/** @param {unknown} err */
function describe(err) {
  return err instanceof Error ? err.message : String(err);
}
