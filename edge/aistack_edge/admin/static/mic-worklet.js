// The live tab's microphone tap, on the audio thread: the context runs at 24 kHz (the
// browser resamples the microphone to it), and each 40 ms of samples goes to the page as
// 16-bit PCM, the Realtime API's `audio/pcm`.

const CHUNK = 960; // 40 ms at 24 kHz, as a microphone gives it

class PcmTap extends AudioWorkletProcessor {
  constructor() {
    super();
    this.pcm = new Int16Array(CHUNK);
    this.filled = 0;
  }

  process(inputs) {
    const samples = inputs[0][0]; // the first channel; none while the track is muted
    if (!samples) return true;
    for (const sample of samples) {
      const clipped = Math.max(-1, Math.min(1, sample));
      this.pcm[this.filled++] = clipped < 0 ? clipped * 0x8000 : clipped * 0x7fff;
      if (this.filled === CHUNK) {
        this.port.postMessage(this.pcm.buffer, [this.pcm.buffer]);
        this.pcm = new Int16Array(CHUNK);
        this.filled = 0;
      }
    }
    return true;
  }
}

registerProcessor("pcm-tap", PcmTap);
