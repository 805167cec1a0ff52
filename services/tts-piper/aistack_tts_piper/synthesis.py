"""Text to encoded audio, one sentence at a time."""

from collections.abc import Generator

from piper import PiperVoice, SynthesisConfig

from aistack_contract.errors import AistackError, ErrorKind
from aistack_tts_piper import PROVIDER
from aistack_tts_piper.encoders import AudioFormat, open_encoder


def speak(
    voice: PiperVoice, text: str, fmt: AudioFormat, speed: float
) -> Generator[bytes, None, None]:
    """Encoded audio of `text`, yielded as each sentence is synthesized (blocking)."""
    syn_config = SynthesisConfig(length_scale=voice.config.length_scale / speed)
    encoder = open_encoder(fmt, voice.config.sample_rate)
    try:
        spoken = False
        for chunk in voice.synthesize(text, syn_config):
            spoken = True
            if data := encoder.encode(chunk.audio_int16_array):
                yield data
        if not spoken:
            raise AistackError(ErrorKind.MALFORMED, "the input has nothing to speak", PROVIDER)
        yield encoder.finish()
    finally:
        encoder.close()
