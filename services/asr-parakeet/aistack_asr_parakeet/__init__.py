"""aistack's NVIDIA NeMo Parakeet TDT ASR backend: `python -m aistack_asr_parakeet`."""
