// The playground: speech to text (upload or record), text to speech, streamed chat,
// all through the public /v1 API as any client would call it.

import { el, failure, say } from "/admin/static/api.js";
import { decode, draw } from "/admin/static/waveform.js";

const $ = (id) => document.getElementById(id);
let clip = null; // the Blob to transcribe: an upload or a recording
let recorder = null;
let spoken = null; // the object URL of the latest speech

async function loadModels() {
  const response = await fetch("/v1/models", { cache: "no-store" });
  if (!response.ok) throw await failure(response);
  const { data } = await response.json();
  for (const select of document.querySelectorAll("select.models")) {
    const ids = data.filter((m) => m.capabilities.includes(select.dataset.capability)).map((m) => m.id);
    const kept = select.value;
    select.replaceChildren(...ids.map((id) => el("option", { value: id }, id)));
    if (ids.includes(kept)) select.value = kept;
  }
}

async function toggleRecording() {
  const button = $("asr-record");
  if (recorder) {
    recorder.stop();
    return;
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const chunks = [];
    recorder = new MediaRecorder(stream);
    recorder.addEventListener("dataavailable", (e) => chunks.push(e.data));
    recorder.addEventListener("stop", () => {
      stream.getTracks().forEach((t) => t.stop());
      clip = new Blob(chunks, { type: recorder.mimeType });
      recorder = null;
      button.textContent = "Record";
      say($("asr-state"), `recorded ${(clip.size / 1024).toFixed(0)} KiB`);
    });
    recorder.start();
    button.textContent = "Stop";
    say($("asr-state"), "recording…");
  } catch (error) {
    say($("asr-state"), `can't record: ${error.message}`, true);
  }
}

async function transcribe(event) {
  event.preventDefault();
  const state = $("asr-state");
  if (!clip) return say(state, "choose or record audio first", true);
  const form = new FormData();
  form.append("file", clip, clip.name || "recording.webm");
  form.append("model", $("asr-model").value || "auto");
  form.append("response_format", "verbose_json");
  form.append("timestamp_granularities[]", "segment");
  form.append("timestamp_granularities[]", "word");
  say(state, "transcribing…");
  const started = performance.now();
  try {
    const response = await fetch("/v1/audio/transcriptions", { method: "POST", body: form });
    if (!response.ok) throw await failure(response);
    const result = await response.json();
    const words = result.words ?? result.segments.flatMap((s) => s.words ?? []);
    $("asr-text").textContent = result.text;
    $("asr-segments").replaceChildren(...result.segments.map((s) =>
      el("li", {}, `${s.start.toFixed(2)}–${s.end.toFixed(2)} s ${s.text}`)));
    say(state, `${result.language ?? ""} · ${result.duration?.toFixed(1)} s of audio · ` +
      `${((performance.now() - started) / 1000).toFixed(2)} s`);
    draw($("asr-wave"), await decode(clip), result.segments, words);
  } catch (error) {
    say(state, `failed: ${error.message}`, true);
  }
}

async function speak(event) {
  event.preventDefault();
  const state = $("tts-state");
  say(state, "synthesizing…");
  try {
    const response = await fetch("/v1/audio/speech", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        model: $("tts-model").value, voice: $("tts-voice").value,
        input: $("tts-input").value, response_format: "wav",
      }),
    });
    if (!response.ok) throw await failure(response);
    const audio = $("tts-audio");
    if (spoken) URL.revokeObjectURL(spoken);
    spoken = URL.createObjectURL(await response.blob());
    audio.src = spoken;
    audio.load();
    say(state, "ready");
  } catch (error) {
    say(state, `failed: ${error.message}`, true);
  }
}

/** Each `data:` payload of an SSE body, as it arrives. */
async function* events(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffered += value.replaceAll("\r\n", "\n");
    let cut;
    while ((cut = buffered.indexOf("\n\n")) >= 0) {
      const block = buffered.slice(0, cut);
      buffered = buffered.slice(cut + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).trimStart()).join("\n");
      if (data) yield data;
    }
  }
}

async function chat(event) {
  event.preventDefault();
  const state = $("chat-state");
  const output = $("chat-output");
  output.textContent = "";
  say(state, "waiting for the first token…");
  try {
    const response = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        model: $("chat-model").value, stream: true,
        max_tokens: Number($("chat-max-tokens").value),
        messages: [{ role: "user", content: $("chat-input").value }],
      }),
    });
    if (!response.ok) throw await failure(response);
    let tokens = 0;
    for await (const data of events(response.body)) {
      if (data === "[DONE]") break;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(chunk.error.message);
      const piece = chunk.choices?.[0]?.delta?.content;
      if (piece) {
        output.textContent += piece;
        say(state, `streaming… ${++tokens} chunks`);
      }
    }
    say(state, `done · ${tokens} chunks`);
  } catch (error) {
    say(state, `failed: ${error.message}`, true);
  }
}

export function setupPlayground() {
  $("asr-file").addEventListener("change", (e) => {
    clip = e.target.files[0] ?? null;
  });
  $("asr-record").addEventListener("click", toggleRecording);
  $("asr-form").addEventListener("submit", transcribe);
  $("tts-form").addEventListener("submit", speak);
  $("chat-form").addEventListener("submit", chat);
  loadModels().catch((error) => say($("asr-state"), `no models: ${error.message}`, true));
}
