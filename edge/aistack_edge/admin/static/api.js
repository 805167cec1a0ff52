// Talking to the edge: the admin token (kept in sessionStorage), the admin API, the
// error envelope as a message, and a small DOM builder that only ever sets text.

const TOKEN_KEY = "aistack-admin-token";

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

export class ApiError extends Error {
  constructor(status, kind, message) {
    super(message);
    this.status = status;
    this.kind = kind;
  }
}

/** The error a non-2xx answer carries in its envelope. */
export async function failure(response) {
  let kind = "unknown";
  let message = `${response.status} ${response.statusText}`;
  try {
    const { error } = await response.json();
    kind = error.kind;
    message = error.message;
  } catch {
    // not an envelope: keep the status line
  }
  return new ApiError(response.status, kind, message);
}

function headers(extra = {}) {
  const held = token.get();
  return held ? { ...extra, Authorization: `Bearer ${held}` } : extra;
}

export async function adminGet(path) {
  const response = await fetch(path, { headers: headers(), cache: "no-store" });
  if (!response.ok) throw await failure(response);
  return response.json();
}

/** A change: JSON, with the token in a header (which is also what stops CSRF). */
export async function adminPost(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: headers({ "Content-Type": "application/json" }),
    body: JSON.stringify(body),
  });
  if (!response.ok) throw await failure(response);
  return response.json();
}

/** A change whose answer is NDJSON (a pull's progress): `onEvent` gets each object as
 * its line arrives. */
export async function adminStream(path, body, onEvent) {
  const response = await fetch(path, {
    method: "POST",
    headers: headers({ "Content-Type": "application/json" }),
    body: JSON.stringify(body),
  });
  if (!response.ok) throw await failure(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    pending += value;
    const lines = pending.split("\n");
    pending = lines.pop();
    for (const line of lines) if (line.trim()) onEvent(JSON.parse(line));
  }
  if (pending.trim()) onEvent(JSON.parse(pending));
}

/** An element with properties and children (strings become text nodes). */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node[key] = value;
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

/** Write `message` into the status line `node`, as an error when `error`. */
export function say(node, message, error = false) {
  node.textContent = message;
  node.classList.toggle("error", error);
}
