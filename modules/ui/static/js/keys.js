/**
 * Keyboard shortcuts: `/` focuses the view's search, `j` and `k` move the selection in a
 * list (jobs, actors), Enter opens the selected row, and `g` then `l` jumps to the end of
 * a job's log. Keys typed into a field are left alone.
 * @module
 */

/**
 * Dispatched on `window` by `g` `l`. A log view that handles it calls `preventDefault()`;
 * otherwise the page scrolls the `.log` box of the view to its end.
 */
export const LOG_END_EVENT = "jobhead:log-end";

/** Lists `j` and `k` move in: a `<tbody data-keyboard-list>`, one row per item. */
const LIST_ROWS = "tbody[data-keyboard-list] > tr";

let afterG = false;

/**
 * Handles a keydown on the page for the view in `main`.
 * @param {KeyboardEvent} event
 * @param {HTMLElement} main
 */
export function onShortcut(event, main) {
  if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
  const target = /** @type {HTMLElement | null} */ (event.target);
  if (target?.isContentEditable || target?.closest?.("input, textarea, select, dialog")) return;
  const wasAfterG = afterG;
  afterG = false;
  if (wasAfterG && event.key === "l") {
    event.preventDefault();
    jumpToLogEnd(main);
    return;
  }
  if (event.key === "/") {
    const search = /** @type {HTMLInputElement | null} */ (
      main.querySelector('input[type="search"]')
    );
    if (!search) return;
    event.preventDefault();
    search.focus();
    search.select();
  } else if (event.key === "j" || event.key === "k") {
    if (moveSelection(main, event.key === "j" ? 1 : -1)) event.preventDefault();
  } else if (event.key === "Enter" && target?.matches?.(LIST_ROWS)) {
    const link = /** @type {HTMLAnchorElement | null} */ (target.querySelector("a[href]"));
    if (!link) return;
    event.preventDefault();
    link.click();
  } else if (event.key === "g") {
    afterG = true;
  }
}

/**
 * Moves the selected row of the view's list by `step`; false when there is no list.
 * @param {HTMLElement} main
 * @param {number} step
 */
function moveSelection(main, step) {
  const rows = /** @type {HTMLTableRowElement[]} */ ([...main.querySelectorAll(LIST_ROWS)]);
  if (rows.length === 0) return false;
  const selected = rows.findIndex((row) => row.classList.contains("selected"));
  const at = selected === -1
    ? (step > 0 ? 0 : rows.length - 1)
    : Math.min(rows.length - 1, Math.max(0, selected + step));
  for (const row of rows) row.classList.remove("selected");
  const row = rows[at];
  row.classList.add("selected");
  row.tabIndex = -1;
  row.focus();
  return true;
}

/** @param {HTMLElement} main */
function jumpToLogEnd(main) {
  const handled = !dispatchEvent(new CustomEvent(LOG_END_EVENT, { cancelable: true }));
  if (handled) return;
  const log = main.querySelector(".log");
  if (log) log.scrollTop = log.scrollHeight;
}
