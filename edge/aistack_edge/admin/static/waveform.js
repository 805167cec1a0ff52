// The waveform of a clip on a canvas, with the transcript's segments as bands and its
// words as ticks, all placed by their times.

const SEGMENT_FILLS = ["rgba(9,105,218,.10)", "rgba(130,80,223,.10)"];

/** Decode any audio the browser can play (Web Audio's decodeAudioData). */
export async function decode(blob) {
  const context = new OfflineAudioContext(1, 1, 16000);
  return context.decodeAudioData(await blob.arrayBuffer());
}

/** Draw `audio` (an AudioBuffer) with `segments` and `words` ({start, end, ...} in s). */
export function draw(canvas, audio, segments, words) {
  const g = canvas.getContext("2d");
  const { width, height } = canvas;
  const x = (t) => (t / audio.duration) * width;
  g.clearRect(0, 0, width, height);
  segments.forEach((s, i) => {
    g.fillStyle = SEGMENT_FILLS[i % 2];
    g.fillRect(x(s.start), 0, Math.max(1, x(s.end) - x(s.start)), height);
  });
  const samples = audio.getChannelData(0);
  const perPixel = Math.max(1, Math.floor(samples.length / width));
  const middle = height / 2 - 8;
  g.fillStyle = "#57606a";
  for (let px = 0; px < width; px++) {
    let peak = 0;
    const end = Math.min(samples.length, (px + 1) * perPixel);
    for (let i = px * perPixel; i < end; i++) peak = Math.max(peak, Math.abs(samples[i]));
    g.fillRect(px, middle - peak * middle, 1, Math.max(1, 2 * peak * middle));
  }
  g.font = "11px system-ui, sans-serif";
  g.textBaseline = "bottom";
  let freeFrom = 0;
  for (const w of words) {
    g.fillStyle = "#0969da";
    g.fillRect(x(w.start), height - 16, Math.max(1, x(w.end) - x(w.start)), 2);
    const label = w.word.trim();
    if (x(w.start) >= freeFrom) {
      g.fillText(label, x(w.start), height);
      freeFrom = x(w.start) + g.measureText(label).width + 4;
    }
  }
  canvas.dataset.segments = String(segments.length);
  canvas.dataset.words = String(words.length);
}
