"""The clients of the backends' work (ASR, TTS, LLM), one per kind, and the upstream
errors they share (http.py). Two other parts call backends on their own: the catalog
(their model listings and /health) and hot-swap (an ASR backend's /evict, Ollama's
/api/ps and unload)."""
