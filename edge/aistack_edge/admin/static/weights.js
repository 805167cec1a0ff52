// The weights panel: each backend's models present, missing or being fetched (GET
// /admin/api/models), and a pull with its progress as the backend streams it (POST
// /admin/api/models/pull, NDJSON events like Ollama's pull).

import { adminGet, adminStream, el, say } from "/admin/static/api.js";

const $ = (id) => document.getElementById(id);
let pulling = null; // the pull this page runs: {backend, repo}

function size(bytes) {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(2)} GB` : `${(bytes / 1e6).toFixed(1)} MB`;
}

function state(w) {
  if (w.status !== "fetching") return w.status;
  return w.total ? `fetching ${Math.floor((100 * w.completed) / w.total)}%` : "fetching";
}

function onDisk(w) {
  if (w.status === "fetching" && w.total) return `${size(w.completed)} of ${size(w.total)}`;
  if (!w.files) return "–";
  return `${size(w.size)} in ${w.files} file${w.files === 1 ? "" : "s"}`;
}

function render(backends, changesAllowed, onPull) {
  const rows = [];
  for (const b of backends) {
    if (b.error) {
      rows.push(el("tr", {}, el("td", {}, b.url), el("td", { class: "muted" }, "–"),
        el("td", { class: "down" }, `unreadable: ${b.error}`), el("td", {}), el("td", {})));
      continue;
    }
    for (const w of b.weights) {
      const busy = pulling !== null || b.pulling !== null;
      const button = el("button", {
        type: "button", className: "pull", disabled: !changesAllowed || busy,
        title: changesAllowed ? "fetch it into the backend's folder" : "needs AISTACK_ADMIN_TOKEN",
        onclick: () => onPull(b.url, w.repo),
      }, "Pull");
      rows.push(el("tr", { className: `weight ${w.status}` },
        el("td", {}, b.url),
        el("td", {}, w.repo),
        el("td", { className: w.status }, state(w)),
        el("td", {}, onDisk(w)),
        el("td", {}, button)));
    }
  }
  $("weights").tBodies[0].replaceChildren(...rows);
}

/** The panel, redrawn from the backends' answers. */
export async function refreshWeights(changesAllowed) {
  const { backends } = await adminGet("/admin/api/models");
  render(backends, changesAllowed, (backend, repo) => pull(backend, repo, changesAllowed));
}

/** Overall figures from the events: the files done plus the one moving. */
function tracker() {
  let total = 0;
  let done = 0;
  return (event) => {
    if (event.status === "listed") total = event.total;
    else if (event.status === "present" || event.status === "verified") done += event.total;
    const moving = event.status === "pulling" ? event.completed : 0;
    return { completed: done + moving, total };
  };
}

async function pull(backend, repo, changesAllowed) {
  const out = $("pull-state");
  const bar = $("pull-progress");
  const figures = tracker();
  pulling = { backend, repo };
  bar.hidden = false;
  bar.value = 0;
  say(out, `${repo}: asking ${backend}…`);
  try {
    let failed = null;
    await adminStream("/admin/api/models/pull", { backend, repo }, (event) => {
      if (event.error) {
        failed = event.error;
        return;
      }
      const { completed, total } = figures(event);
      if (total) bar.value = completed / total;
      const file = event.file ? ` ${event.file}` : "";
      const of = total ? `: ${size(completed)} of ${size(total)}` : "";
      say(out, `${repo}: ${event.status}${file}${of}`);
    });
    if (failed) say(out, `${repo}: failed: ${failed}`, true);
  } catch (error) {
    say(out, `${repo}: refused: ${error.message}`, true);
  } finally {
    pulling = null;
    bar.hidden = true;
    await refreshWeights(changesAllowed);
  }
}
