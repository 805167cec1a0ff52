"""What a TTS request's `ref_audio` (voice cloning's reference clip) may be.

- a `data:` URL holding base64: checked to decode, passed on as it is;
- the absolute path of a file inside the reference audio directory (symlinks and `..`
  resolved first): read here and passed on as a `data:` URL, because the backend
  (vLLM-Omni) takes no paths and need not see this file system;
- an http(s) URL, which the backend then fetches: only when URLs are allowed;
- anything else is refused as malformed.
"""

import base64
import binascii
import mimetypes
import os
import re
from dataclasses import dataclass
from pathlib import Path

from aistack_edge.errors import malformed, overflow

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")


@dataclass(frozen=True)
class RefAudioPolicy:
    directory: Path | None
    urls: bool
    max_bytes: int

    def resolve(self, value: object) -> object:
        """The value to pass on in place of `value` (blocking: it may read a file)."""
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise malformed("ref_audio must be a data: URL or the path of a file on the server")
        scheme = match[1].lower() if (match := _SCHEME.match(value)) else None
        if scheme == "data":
            check_data_url(value)
            return value
        if scheme in ("http", "https"):
            if not self.urls:
                raise malformed(
                    "ref_audio URLs are not fetched here (AISTACK_TTS_REF_AUDIO_URLS is off); "
                    "send the audio inline as a data: URL"
                )
            return value
        if scheme is not None:
            raise malformed(f"ref_audio: {scheme}: URLs are not accepted; send a data: URL")
        try:
            return self._inline(self._confined(value))
        except (OSError, ValueError) as exc:  # a NUL in the path, a file it can't read
            raise malformed(f"ref_audio: the file can't be read: {type(exc).__name__}") from None

    def _confined(self, value: str) -> Path:
        """The file `value` names, if it lies inside the directory both as written and
        with symlinks and `..` resolved."""
        if self.directory is None:
            raise malformed(
                "ref_audio names a file on the server, and no directory is open to that "
                "(AISTACK_TTS_REF_AUDIO_DIR is unset); send the audio as a data: URL"
            )
        path = Path(value)
        if not path.is_absolute():
            raise malformed(
                "ref_audio: name a file on the server by its absolute path, "
                "or send the audio as a data: URL"
            )
        root = self.directory.absolute()
        resolved = path.resolve()
        written = Path(os.path.normpath(path))
        if not (written.is_relative_to(root) and resolved.is_relative_to(root.resolve())):
            raise malformed("ref_audio is outside the directory open to reference audio")
        if not resolved.is_file():
            raise malformed("ref_audio: no such file in the reference audio directory")
        return resolved

    def _inline(self, path: Path) -> str:
        size = path.stat().st_size
        if size > self.max_bytes:
            raise overflow(f"ref_audio is {size} bytes; the limit is {self.max_bytes}")
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode()


def check_data_url(value: str) -> None:
    header, comma, payload = value.partition(",")
    if not comma or not header.lower().endswith(";base64"):
        raise malformed("ref_audio: a data: URL must be base64 (data:audio/wav;base64,...)")
    try:
        audio = base64.b64decode(payload, validate=True)
    except binascii.Error as exc:
        raise malformed(f"ref_audio: the data: URL is not valid base64: {exc}") from None
    if not audio:
        raise malformed("ref_audio: the data: URL holds no audio")
