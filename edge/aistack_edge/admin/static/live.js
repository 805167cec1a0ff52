// The live tab: the microphone, through an AudioWorklet at 24 kHz, as 16-bit PCM over the
// Realtime API's WebSocket (/v1/realtime?intent=transcription); words shown as they come.
// A browser cannot set Authorization on a WebSocket: the page mints a one-use client
// secret and offers it as the `openai-insecure-api-key.<secret>` subprotocol.

import { el, failure, say } from "/admin/static/api.js";

const $ = (id) => document.getElementById(id);
const RATE = 24000;
const TRANSCRIPTION = "conversation.item.input_audio_transcription";
let live = null; // { ws, audio, stream } while listening

async function mintSecret(model) {
  const response = await fetch("/v1/realtime/client_secrets", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      expires_after: { anchor: "created_at", seconds: 60 },
      session: {
        type: "transcription",
        audio: { input: { transcription: { model }, turn_detection: { type: "server_vad" } } },
      },
    }),
  });
  if (!response.ok) throw await failure(response);
  return (await response.json()).value;
}

function connect(secret) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const url = `${scheme}://${location.host}/v1/realtime?intent=transcription`;
  const ws = new WebSocket(url, ["realtime", `openai-insecure-api-key.${secret}`]);
  return new Promise((resolve, reject) => {
    ws.addEventListener("open", () => resolve(ws), { once: true });
    ws.addEventListener("error", () => reject(new Error("the WebSocket did not open")), { once: true });
  });
}

/** The line of an utterance (one per item), made on its first event. */
function lineOf(itemId) {
  const lines = $("live-lines");
  let line = lines.querySelector(`li[data-item="${CSS.escape(itemId)}"]`);
  if (!line) {
    line = el("li", { className: "pending" });
    line.dataset.item = itemId;
    lines.append(line);
  }
  return line;
}

function onEvent(message) {
  const state = $("live-state");
  const event = JSON.parse(message.data);
  switch (event.type) {
    case "input_audio_buffer.speech_started":
      say(state, "hearing speech…");
      break;
    case "input_audio_buffer.committed":
      lineOf(event.item_id);
      say(state, "transcribing…");
      break;
    case `${TRANSCRIPTION}.delta`:
      lineOf(event.item_id).textContent += event.delta;
      break;
    case `${TRANSCRIPTION}.completed`: {
      const line = lineOf(event.item_id);
      line.textContent = event.transcript;
      line.className = "";
      say(state, "listening");
      break;
    }
    case `${TRANSCRIPTION}.failed`:
    case "error":
      say(state, `failed: ${event.error.message}`, true);
      break;
  }
}

async function start() {
  const state = $("live-state");
  say(state, "connecting…");
  const secret = await mintSecret($("live-model").value || "auto");
  const ws = await connect(secret);
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
  });
  const audio = new AudioContext({ sampleRate: RATE });
  await audio.audioWorklet.addModule("/admin/static/mic-worklet.js");
  const tap = new AudioWorkletNode(audio, "pcm-tap");
  tap.port.onmessage = ({ data }) => {
    if (ws.readyState !== WebSocket.OPEN) return;
    const bytes = new Uint8Array(data);
    let binary = "";
    for (const byte of bytes) binary += String.fromCharCode(byte);
    ws.send(JSON.stringify({ type: "input_audio_buffer.append", audio: btoa(binary) }));
  };
  audio.createMediaStreamSource(stream).connect(tap);
  ws.addEventListener("message", onEvent);
  ws.addEventListener("close", () => {
    if (live?.ws === ws) stop("the server closed the session");
  });
  live = { ws, audio, stream };
  $("live-go").textContent = "Stop";
  say(state, "listening");
}

function stop(why = "stopped") {
  if (!live) return;
  const { ws, audio, stream } = live;
  live = null;
  stream.getTracks().forEach((t) => t.stop());
  audio.close();
  ws.close();
  // Utterances committed but not yet transcribed are gone with the session.
  $("live-lines").querySelectorAll("li.pending").forEach((line) => line.remove());
  $("live-go").textContent = "Start";
  say($("live-state"), why);
}

async function toggle(event) {
  event.preventDefault();
  if (live) return stop();
  try {
    await start();
  } catch (error) {
    stop();
    say($("live-state"), `can't listen: ${error.message}`, true);
  }
}

export function setupLive() {
  $("live-form").addEventListener("submit", toggle);
}
