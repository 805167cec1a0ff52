"""aistack's GPU text-to-speech service: vLLM-Omni's OpenAI-compatible Qwen3-TTS server."""
