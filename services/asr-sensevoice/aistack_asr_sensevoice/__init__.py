"""aistack's SenseVoice Small ASR backend (FunASR, fsmn-vad).

Run it with `python -m aistack_asr_sensevoice`.
"""
