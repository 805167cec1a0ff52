"""Text to encoded audio, one sentence at a time, stepped on a thread of its own."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor

from piper import PiperVoice, SynthesisConfig

from aistack_contract.errors import AistackError, ErrorKind
from aistack_contract.jobs import TrackedJob
from aistack_tts_piper import PROVIDER
from aistack_tts_piper.encoders import AudioFormat, open_encoder


def speak(voice: PiperVoice, text: str, fmt: AudioFormat, speed: float) -> Iterator[bytes]:
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


async def in_thread(items: Iterator[bytes], job: TrackedJob) -> AsyncIterator[bytes]:
    """Step a blocking iterator on a thread of its own, off the event loop.

    Closing this (or cancelling its consumer) closes `items` on that same thread once the
    step in progress ends, and returns only then, so that the job's compute has stopped
    when its `track` block ends. A cancelled job raises JobCancelled after its step.
    """
    loop = asyncio.get_running_loop()
    pool = ThreadPoolExecutor(1, thread_name_prefix="piper-synthesis")
    try:
        while (item := await loop.run_in_executor(pool, next, items, None)) is not None:
            job.check()
            yield item
    finally:
        closed = loop.run_in_executor(pool, items.close)
        pool.shutdown(wait=False)
        await asyncio.shield(closed)
