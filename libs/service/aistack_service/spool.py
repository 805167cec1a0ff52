"""An upload held in memory while it is small, in a temporary file once it is not: the
edge's and the ASR shell's, so that a long recording costs a window of memory at each
end of a hop, not its size.

The temporary file has no name from the start (the system's temporary directory,
`TMPDIR`), so it is gone when closed, whatever the path: an answer, an error, a hang-up,
a crash. It is written off the event loop.
"""

import asyncio
import io
import os
import tempfile
from typing import BinaryIO

from aistack_contract.errors import AISTACK, AistackError, ErrorKind

# Kept in memory up to this: most requests are short clips, handled without a file.
SPOOL_ABOVE = 1 << 20


class Spool:
    """Bytes written in turn; read back whole, from memory or from the file. A full
    temporary directory is 503 `network` from `provider`: retry later."""

    def __init__(self, provider: str = AISTACK, threshold: int = SPOOL_ABOVE) -> None:
        self.size = 0
        self._provider = provider
        self._threshold = threshold
        self._held = bytearray()
        """What is not in the file yet: all of it while it is small."""
        self._file: BinaryIO | None = None

    async def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self._held += chunk
        if self._file is None and self.size <= self._threshold:
            return
        # Off to the file a threshold's worth at a time: one thread hop per megabyte,
        # not per chunk of a few kilobytes.
        if len(self._held) >= self._threshold:
            await self._spill()

    async def _spill(self) -> None:
        pending, self._held = bytes(self._held), bytearray()
        try:
            if self._file is None:
                self._file = await asyncio.to_thread(tempfile.TemporaryFile)
            await asyncio.to_thread(self._file.write, pending)
        except OSError as exc:  # the temporary directory is full, say
            message = f"no room to hold the upload now ({exc.strerror or exc}); retry later"
            raise AistackError(ErrorKind.NETWORK, message, self._provider) from exc

    def body(self) -> bytes | BinaryIO:
        """What to send on: the bytes, or a file of its own from the start (aiohttp reads
        a file payload a window at a time, off the event loop, and closes it once sent:
        the same upload may be sent again, detected then transcribed, or diarized then
        transcribed). Its descriptor is a duplicate, sharing the file's position: one
        sender at a time."""
        if self._file is None:
            return bytes(self._held)
        shared = self.reader()
        own = os.fdopen(os.dup(shared.fileno()), "rb")
        own.seek(0)
        return own

    def reader(self) -> BinaryIO:
        """A file to read what was written from, at its start."""
        if self._file is None:
            return io.BytesIO(self._held)
        if self._held:  # less than a threshold's worth: written here, at once
            self._file.write(self._held)
            self._held = bytearray()
        self._file.flush()
        self._file.seek(0)
        return self._file

    @property
    def on_disk(self) -> bool:
        return self._file is not None

    def close(self) -> None:
        """Drop what is held: the file, removed with its last descriptor."""
        self._held = bytearray()
        if self._file is not None:
            self._file.close()
