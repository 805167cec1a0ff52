// The admin page: sign-in, the status polled every two seconds, and the actions.

import { ApiError, adminGet, adminPost, el, say, token } from "/admin/static/api.js";
import { setupLive } from "/admin/static/live.js";
import { setupPlayground } from "/admin/static/playground.js";
import { refreshWeights } from "/admin/static/weights.js";

const POLL_MS = 2000;
const $ = (id) => document.getElementById(id);
let changesAllowed = false;

function seconds(s) {
  if (s === null || s === undefined) return "for an unknown time";
  return s < 60 ? `for ${s.toFixed(1)} s` : `for ${(s / 60).toFixed(1)} min`;
}

function renderBackends(backends) {
  const rows = backends.map((b) => {
    const models = b.models.map((m) =>
      el("span", { class: m.loaded ? "model loaded" : "model" },
        m.id, m.loaded === true ? " (loaded)" : m.loaded === false ? " (not loaded)" : ""));
    const evict = b.evict
      ? el("button", {
          type: "button", className: "evict", disabled: !changesAllowed,
          title: changesAllowed ? "unload its idle models" : "needs AISTACK_ADMIN_TOKEN",
          onclick: () => act("/admin/api/evict", { backend: b.url }, "evicted"),
        }, "Evict")
      : null;
    return el("tr", { className: `backend ${b.up ? "is-up" : "is-down"}` },
      el("td", {}, b.capability),
      el("td", {}, b.url),
      el("td", { className: b.up ? "up" : "down" }, b.up ? "up" : "down"),
      el("td", {}, ...models),
      el("td", {}, evict));
  });
  $("backends").tBodies[0].replaceChildren(...rows);
}

function renderSlot(slot) {
  const parts = [`${slot.store} lease`];
  if (slot.error) parts.push(`unreadable: ${slot.error}`);
  else if (slot.holder) parts.push(`held by ${slot.holder} ${seconds(slot.held_s)}`);
  else parts.push("free");
  if (slot.waiting !== null) {
    const limit = slot.wait_s > 0 ? ` (up to ${slot.wait_s} s)` : "";
    parts.push(`${slot.waiting} waiting${limit}`);
  }
  say($("slot"), parts.join(" · "), Boolean(slot.error));
}

function renderGlance(glance) {
  $("glance-window").textContent = `last ${glance.window_s / 60} min`;
  $("rpm").textContent = glance.requests_per_min;
  $("nreq").textContent = glance.requests;
  const rows = Object.entries(glance.latency_ms).map(([cap, l]) =>
    el("tr", {}, el("td", {}, cap), el("td", {}, String(l.count)),
      el("td", {}, String(l.p50)), el("td", {}, String(l.p95))));
  $("latency").tBodies[0].replaceChildren(...rows);
  const errors = Object.entries(glance.errors).map(([kind, n]) => el("li", {}, `${kind}: ${n}`));
  $("errors").replaceChildren(...(errors.length ? errors : [el("li", { class: "muted" }, "none")]));
}

function renderRecent(recent) {
  const rows = recent.map((r) =>
    el("tr", {},
      el("td", {}, new Date(r.at * 1000).toLocaleTimeString()),
      el("td", {}, `${r.method} ${r.path}`),
      el("td", {}, r.model || "–"),
      el("td", { className: `s${String(r.status)[0]}` },
        String(r.status), r.error_kind ? ` ${r.error_kind}` : r.outcome === "2xx" ? "" : ` ${r.outcome}`),
      el("td", {}, r.latency_ms.toFixed(1)),
      el("td", { className: "muted" }, r.request_id.slice(0, 12))));
  $("recent").tBodies[0].replaceChildren(...rows);
}

// Bumped by each toggle change: a status asked for before it is older than the box the
// user just clicked, and must not set it back.
let toggleChanges = 0;

function renderToggles(state, asked) {
  for (const box of $("toggles").elements) {
    if (asked === toggleChanges) box.checked = Boolean(state[box.name]);
    box.disabled = !changesAllowed;
  }
}

function showSignIn(needed) {
  $("login").hidden = !needed;
  $("logout").hidden = needed || !token.get();
}

async function refresh() {
  try {
    const asked = toggleChanges;
    const status = await adminGet("/admin/api/status");
    changesAllowed = status.changes_allowed;
    showSignIn(false);
    renderBackends(status.backends);
    renderSlot(status.slot);
    renderGlance(status.glance);
    renderRecent(status.recent);
    renderToggles(status.observability, asked);
    await refreshWeights(changesAllowed);
    const notice = $("notice");
    notice.hidden = changesAllowed;
    notice.textContent = changesAllowed ? "" :
      "Read only: actions need AISTACK_ADMIN_TOKEN set on the edge.";
    say($("conn"), `updated ${new Date().toLocaleTimeString()}`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      token.clear();
      showSignIn(true);
      say($("conn"), "sign in with the admin token");
    } else {
      say($("conn"), `status unavailable: ${error.message}`, true);
    }
  }
}

async function act(path, body, verb) {
  const out = $("action-result");
  try {
    const answer = await adminPost(path, body);
    say(out, verb === "evicted"
      ? `${answer.backend}: evicted ${answer.evicted.length ? answer.evicted.join(", ") : "nothing"}`
      : "saved");
  } catch (error) {
    say(out, `refused: ${error.message}`, true);
  }
  await refresh();
}

function setup() {
  $("login").addEventListener("submit", (event) => {
    event.preventDefault();
    token.set($("token").value);
    $("token").value = "";
    refresh();
  });
  $("logout").addEventListener("click", () => {
    token.clear();
    refresh();
  });
  $("toggles").addEventListener("change", (event) => {
    toggleChanges += 1;
    act("/admin/api/observability", { [event.target.name]: event.target.checked }, "saved");
  });
  setupPlayground();
  setupLive();
  refresh();
  setInterval(refresh, POLL_MS);
}

setup();
