/**
 * The hello module's dashboard page (`#/m/hello/greeter`): a button that calls the
 * module's API, and a live count of the jobs that end while the page is open. It is an
 * ES module the head serves as it is: no build step. It uses the dashboard's classes
 * (`card`, `button primary`, `muted`) and CSS variables (`--accent`), so it follows the
 * light and dark themes.
 * @module
 */

/** @typedef {import("../modules/ui/static/js/module_view.js").ModuleViewContext} ModuleViewContext */

/** @type {(() => void) | undefined} */
let stopCounting;

/**
 * Draws the page into `el`.
 * @param {HTMLElement} el
 * @param {ModuleViewContext} ctx
 */
export function mount(el, { api, live, navigate }) {
  const button = document.createElement("button");
  button.className = "primary";
  button.id = "hello-greet";
  button.textContent = "Say hello";
  const answer = document.createElement("p");
  answer.id = "hello-answer";
  answer.setAttribute("role", "status");
  const ended = document.createElement("p");
  ended.className = "muted";
  ended.textContent = "No job has ended since this page opened.";
  const jobs = document.createElement("button");
  jobs.textContent = "See the jobs";
  jobs.addEventListener("click", () => navigate("/jobs"));

  button.addEventListener("click", async () => {
    try {
      const { hello, greetings } = await api("/api/hello");
      answer.textContent = `Hello, ${hello}! Greetings so far: ${greetings}`;
    } catch (err) {
      answer.textContent = `The head answered: ${err instanceof Error ? err.message : err}`;
    }
  });
  let count = 0;
  stopCounting = live.on("job", (row) => {
    if (!["SUCCEEDED", "FAILED", "STOPPED"].includes(row.status)) return;
    ended.textContent = `Jobs ended since this page opened: ${++count}`;
  });

  const card = document.createElement("div");
  card.className = "card";
  card.style.borderLeft = "4px solid var(--accent)";
  const title = document.createElement("h1");
  title.textContent = "Hello";
  card.append(title, button, answer, ended, jobs);
  el.append(card);
}

/** Leaves: the live subscription would end by itself, but a view may clean up too. */
export function unmount() {
  stopCounting?.();
  stopCounting = undefined;
}
