"""aistack's embedded CPU LLM: llama.cpp's server with the bundled SmolLM2-135M-Instruct."""

PROVIDER = "llama.cpp"
