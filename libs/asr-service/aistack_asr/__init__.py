"""The HTTP shell every aistack ASR backend shares.

A backend implements `aistack_asr.backend.Backend` (load / transcribe / unload);
`aistack_asr.main.serve` runs it behind the internal ASR protocol.
"""
