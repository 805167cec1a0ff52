"""aistack's faster-whisper ASR backend: `python -m aistack_asr_whisper`."""
