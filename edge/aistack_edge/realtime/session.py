"""One live transcription session: its settings, its input buffer and VAD, and the
utterances it commits, each transcribed as one GPU workload.

The session never holds the GPU slot while it listens. A committed utterance (by the
server VAD or the client) waits in the session's queue, then takes the slot through the
one workload path (`gpu_workload`, waiting in line for it), is sent to the ASR backend as
a WAV file over the internal protocol, and releases the slot once the backend's answer
is whole; other clients are served between utterances. The queue is bounded: when it is
full the oldest waiting utterance is dropped, with a `failed` event that says why.
"""

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from aistack_contract.errors import AistackError, ErrorKind
from aistack_contract.transcription import Logprob
from aistack_edge.asr.form import TranscriptionForm
from aistack_edge.asr.render import join_texts
from aistack_edge.asr.routing import choose_model
from aistack_edge.asr.transcript import delta_of, info_of, logprobs_of, segments_of
from aistack_edge.errors import malformed, overflow, quoted
from aistack_edge.observability import exchange
from aistack_edge.realtime import bounds, events
from aistack_edge.realtime.audio import InputBuffer, to_pcm16, wav
from aistack_edge.realtime.events import (
    LOGPROBS,
    SessionConfig,
    TranscriptionConfig,
    error_event,
    event,
    new_id,
)
from aistack_edge.realtime.vad import ServerVad, Turn
from aistack_edge.relay import message_outbox
from aistack_edge.state import CATALOG, OBSERVABILITY, SESSION, SETTINGS
from aistack_edge.upstreams import asr
from aistack_edge.workload import gpu_workload
from aistack_service.spool import Spool

log = logging.getLogger(__name__)

TRANSCRIPTION = "conversation.item.input_audio_transcription"
# OpenAI refuses to commit less than this much audio.
MIN_COMMIT_S = 0.1


@dataclass
class Utterance:
    item_id: str
    pcm: bytes
    rate: int
    transcription: TranscriptionConfig
    """The session's settings when it was committed (a later update is for later ones)."""
    ended: float
    """When its speech ended (server VAD) or it was committed: `time.perf_counter()`."""
    logprobs: bool = False
    """Whether the session asked for log-probabilities (`include`) when it was committed."""


async def check_model(app: web.Application, config: SessionConfig) -> None:
    """A model this server does not serve is refused (400); one whose backend is down
    now is not: it may be back by the first commit."""
    given = config.input.transcription
    try:
        entries = await app[CATALOG].of_capability("asr")
        choose_model(given.model, given.language_hint, entries)
    except AistackError as error:
        if error.body.kind == ErrorKind.MALFORMED:
            raise


class Session:
    """The state of one WebSocket's transcription session; `serve` runs it."""

    def __init__(
        self,
        request: web.Request,
        ws: web.WebSocketResponse,
        granted: tuple[str, SessionConfig] | None = None,
    ) -> None:
        """`granted`: the id and settings a client secret was minted with."""
        self._request, self._ws = request, ws
        app = request.app
        self._settings, self._obs = app[SETTINGS], app[OBSERVABILITY]
        self.id, self.config = granted or (new_id("sess"), SessionConfig())
        self._buffer = InputBuffer(self.config.rate)
        self._odd_byte = b""
        self._vad: ServerVad | None = None
        self._item_id: str | None = None  # the turn being spoken (server VAD)
        self._speech_start_ms = 0.0
        self._quiet_since_ms = 0.0  # the end of the last turn or commit (idle timeout)
        self._last_item: str | None = None
        self._waiting: deque[Utterance] = deque()
        self._wake = asyncio.Event()
        self._outbox = message_outbox(request, ws)
        self._listen()

    async def serve(self) -> None:
        """Answer the client's events until it hangs up; then stop the utterance in
        work (its backend job stopped before the slot is released) and drop the rest."""
        metrics = self._obs.metrics
        metrics.realtime_sessions.inc()
        worker = asyncio.create_task(self._transcribe_all())
        try:
            await self._send(event("session.created", session=self.config.ga(self.id)))
            async for message in self._ws:
                if message.type == web.WSMsgType.TEXT:
                    await self._handle(message.data)
                elif message.type == web.WSMsgType.BINARY:
                    await self._send_error(malformed("send events as JSON text messages"))
                else:  # an error frame: the connection is done
                    break
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
            await self._outbox.cancel()
            metrics.realtime_sessions.dec()

    # --- client events ---------------------------------------------------------------

    async def _handle(self, text: str) -> None:
        event_id = None
        try:
            data = await bounds.parse_event(text)
            if not isinstance(data, dict) or not isinstance(data.get("type"), str):
                raise malformed('an event is a JSON object with a string "type"')
            event_id = data.get("event_id") if isinstance(data.get("event_id"), str) else None
            await self._dispatch(data["type"], data)
        except AistackError as error:
            await self._send_error(error, event_id)
        except Exception:  # a fault of ours: the client is told, the session goes on
            log.exception("event of session %s failed", self.id)
            error = AistackError(ErrorKind.UNKNOWN, "internal error in the gateway")
            await self._send_error(error, event_id)

    async def _dispatch(self, kind: str, data: dict[str, Any]) -> None:
        match kind:
            case "input_audio_buffer.append":
                append = events.parse(events.Append, data)
                try:
                    audio = base64.b64decode(append.audio, validate=True)
                except (binascii.Error, ValueError) as exc:
                    raise malformed(
                        f"input_audio_buffer.append: audio is not base64: {exc}"
                    ) from exc
                await self._append(audio)
            case "input_audio_buffer.commit":
                await self._commit_buffer()
            case "input_audio_buffer.clear":
                self._buffer.clear()
                self._odd_byte = b""
                self._turn_over()
                await self._send(event("input_audio_buffer.cleared"))
            case "session.update":
                update = events.parse(events.SessionUpdate, data)
                await self._configure(self.config.updated(update.session))
                await self._send(event("session.updated", session=self.config.ga(self.id)))
            case "transcription_session.update":
                update = events.parse(events.SessionUpdate, data)
                await self._configure(self.config.updated_beta(update.session))
                beta = self.config.beta(self.id)
                await self._send(event("transcription_session.updated", session=beta))
            case _ if kind in events.CONVERSATION_EVENTS:
                raise malformed(
                    f"{kind} belongs to conversation sessions; this server runs "
                    "transcription sessions only"
                )
            case _:
                raise malformed(f"unknown event type {quoted(kind)}")

    async def _configure(self, config: SessionConfig) -> None:
        """Take `config`; a model this server does not serve is refused now."""
        await check_model(self._request.app, config)
        old, self.config = self.config, config
        if old.input.format != config.input.format:
            # Another format: the buffer starts again (its audio was of the old one).
            self._buffer = InputBuffer(config.rate, origin_ms=self._buffer.end_ms)
            self._odd_byte = b""
        if old.input.format != config.input.format or old.input.turn_detection != (
            config.input.turn_detection
        ):
            self._listen()

    def _listen(self) -> None:
        """A new VAD for the current settings (none with turn detection off)."""
        self._turn_over()
        vad = self.config.input.turn_detection
        self._vad = (
            ServerVad(self.config.rate, self._buffer.end_ms, vad.threshold, vad.silence_ms)
            if vad
            else None
        )
        self._quiet_since_ms = self._buffer.end_ms

    def _turn_over(self) -> None:
        self._item_id = None
        self._quiet_since_ms = self._buffer.end_ms
        if self._vad is not None:
            self._vad.turns.reset()

    async def _append(self, audio: bytes) -> None:
        if self.config.input.format.type == "audio/pcm":
            # A sample split between two appends is put together again.
            audio, self._odd_byte = self._odd_byte + audio, b""
            if len(audio) % 2:
                audio, self._odd_byte = audio[:-1], audio[-1:]
        pcm = to_pcm16(self.config.input.format.type, audio)
        samples = len(pcm) // 2
        seconds = samples / self.config.rate
        if samples > self._room() and self._item_id is not None:
            # Server VAD, a turn being spoken: it is committed at the limit, and the
            # speech goes on into the next.
            await self._cut_turn()
        if samples > self._room():
            raise overflow(
                f"the input audio buffer would pass {self._max_buffer_s:g} s "
                "(AISTACK_REALTIME_MAX_BUFFER_S): commit or clear it"
            )
        self._buffer.append(pcm)
        if self._obs.toggles.metrics:
            self._obs.metrics.realtime_audio.inc(seconds)
        if self._vad is None:
            return
        vad = self._vad
        for turn in await asyncio.to_thread(vad.feed, pcm):
            await self._turn(turn)
        detection = self.config.input.turn_detection
        if not vad.turns.speaking and detection is not None:
            # Listening: keep only the audio a turn's prefix may need.
            self._buffer.drop_before(self._buffer.end_ms - detection.prefix_padding_ms)
            await self._idle(detection.idle_timeout_ms)
        elif self._item_id is not None and self._room() <= 0:
            await self._cut_turn()

    @property
    def _max_buffer_s(self) -> float:
        return self._settings.realtime_max_buffer_s

    def _room(self) -> int:
        """How many samples the buffer takes before AISTACK_REALTIME_MAX_BUFFER_S: counted
        in whole samples, as a sum of 40 ms floats would miss the limit by a rounding."""
        return round(self._max_buffer_s * self.config.rate) - self._buffer.samples

    async def _cut_turn(self) -> None:
        """The turn being spoken, committed as it stands (it reached the buffer's limit)."""
        assert self._vad is not None
        self._vad.turns.reset()
        await self._turn(Turn("stopped", self._buffer.end_ms))

    async def _idle(self, timeout_ms: int | None) -> None:
        """Server VAD's idle timeout: `timeout_ms` of appended audio without speech
        since the last turn or commit is an item of its own, committed with the empty
        transcript the VAD heard in it (no GPU work: there was no speech)."""
        start_ms, end_ms = self._quiet_since_ms, self._buffer.end_ms
        if timeout_ms is None or end_ms - start_ms < timeout_ms:
            return
        item_id = new_id("item")
        await self._send(
            event(
                "input_audio_buffer.timeout_triggered",
                audio_start_ms=round(start_ms),
                audio_end_ms=round(end_ms),
                item_id=item_id,
            )
        )
        self._quiet_since_ms = end_ms
        previous, self._last_item = self._last_item, item_id
        await self._send(
            event("input_audio_buffer.committed", item_id=item_id, previous_item_id=previous)
        )
        await self._send(
            event(
                f"{TRANSCRIPTION}.completed",
                item_id=item_id,
                content_index=0,
                transcript="",
                usage={"type": "duration", "seconds": round((end_ms - start_ms) / 1000, 3)},
            )
        )

    async def _turn(self, turn: Turn) -> None:
        vad = self.config.input.turn_detection
        assert vad is not None
        if turn.edge == "started":
            self._item_id = new_id("item")
            self._quiet_since_ms = turn.ms
            self._speech_start_ms = max(self._buffer.start_ms, turn.ms - vad.prefix_padding_ms)
            await self._send(
                event(
                    "input_audio_buffer.speech_started",
                    audio_start_ms=round(self._speech_start_ms),
                    item_id=self._item_id,
                )
            )
            return
        if self._item_id is None:  # its start was cleared or committed by the client
            return
        item_id, self._item_id = self._item_id, None
        self._quiet_since_ms = turn.ms
        await self._send(
            event("input_audio_buffer.speech_stopped", audio_end_ms=round(turn.ms), item_id=item_id)
        )
        await self._commit(item_id, self._buffer.take(self._speech_start_ms, turn.ms))

    async def _commit_buffer(self) -> None:
        """The client's commit: the whole buffer, the turn being spoken included."""
        if self._buffer.duration_s < MIN_COMMIT_S:
            raise malformed(
                f"input_audio_buffer.commit: the buffer holds {self._buffer.duration_s * 1000:.0f}"
                f" ms of audio; at least {MIN_COMMIT_S * 1000:.0f} ms are needed"
            )
        item_id = self._item_id or new_id("item")
        self._turn_over()
        await self._commit(item_id, self._buffer.take_all())

    async def _commit(self, item_id: str, pcm: bytes) -> None:
        previous, self._last_item = self._last_item, item_id
        await self._send(
            event("input_audio_buffer.committed", item_id=item_id, previous_item_id=previous)
        )
        if len(self._waiting) >= self._settings.realtime_queue:
            dropped = self._waiting.popleft()
            self._obs.metrics.realtime_utterances.labels("", "dropped").inc()
            await self._failed(
                dropped.item_id,
                overflow(
                    f"dropped: {self._settings.realtime_queue} utterances of this session "
                    "already waited for the GPU slot (AISTACK_REALTIME_QUEUE)"
                ),
            )
        given = self.config.input.transcription
        logprobs = LOGPROBS in (self.config.include or [])
        self._waiting.append(
            Utterance(item_id, pcm, self.config.rate, given, time.perf_counter(), logprobs)
        )
        self._wake.set()

    # --- utterances ------------------------------------------------------------------

    async def _transcribe_all(self) -> None:
        while True:
            while not self._waiting:
                self._wake.clear()
                await self._wake.wait()
            await self._transcribe(self._waiting.popleft())

    async def _transcribe(self, utterance: Utterance) -> None:
        """One utterance as one workload, seen by the metrics, the access log and the
        admin page as a request of its own (its id is the item's)."""
        record, token = exchange.begin_part(utterance.item_id, "asr", utterance.ended)
        status, outcome, wav_bytes = 499, exchange.DISCONNECT, wav(utterance.pcm, utterance.rate)
        metrics = self._obs.metrics
        try:
            transcript, seconds, logprobs = await self._run(utterance, wav_bytes, record)
            status, outcome = 200, "completed"
            await self._send(
                event(
                    f"{TRANSCRIPTION}.completed",
                    item_id=utterance.item_id,
                    content_index=0,
                    transcript=transcript,
                    usage={"type": "duration", "seconds": seconds},
                    **_logprobs_field(logprobs),
                )
            )
            if self._obs.toggles.metrics:
                metrics.realtime_latency.labels(record.model).observe(record.elapsed())
        except AistackError as error:
            record.error_kind = error.body.kind
            status, outcome = error.status, "failed"
            await self._failed(utterance.item_id, error)
        except Exception:  # a fault of ours: the session goes on, the client is told
            log.exception("utterance %s of session %s failed", utterance.item_id, self.id)
            status, outcome = 500, "failed"
            error = AistackError(ErrorKind.UNKNOWN, "internal error in the gateway")
            await self._failed(utterance.item_id, error)
        finally:
            exchange.end(token)
            metrics.realtime_utterances.labels(record.model, outcome).inc()
            answered = exchange.outcome_of(status, record)
            label = answered if outcome != exchange.DISCONNECT else outcome
            self._obs.finish_part(self._request, record, status, label, len(wav_bytes))

    async def _run(
        self, utterance: Utterance, audio: bytes, record: exchange.Exchange
    ) -> tuple[str, float, list[Logprob] | None]:
        """Transcribe `audio` (the utterance's WAV) in the GPU slot, sending deltas as
        segments come: the transcript, the seconds of audio, and the log-probabilities
        (when asked for and the model has them; else None)."""
        app, given, item_id = self._request.app, utterance.transcription, utterance.item_id
        language = given.language_hint
        entry = choose_model(given.model, language, await app[CATALOG].of_capability("asr"))
        form = TranscriptionForm(model=given.model, language=language, prompt=given.prompt_words)
        options = form.options_for(entry.card)
        # Log-probabilities are the words' (as on the HTTP route): the backend must send them.
        wanted = utterance.logprobs and bool(entry.card.supports_logprobs)
        options.word_timestamps = options.word_timestamps or wanted
        logprobs: list[Logprob] | None = [] if wanted else None
        exchange.of(self._request).model = entry.card.id
        wait_s = self._settings.realtime_slot_wait_s
        spool = Spool()
        await spool.write(audio)
        with contextlib.closing(spool):
            async with gpu_workload(
                self._request, "asr", entry, part=record, wait_s=wait_s
            ) as work:
                answer = asr.transcribe(
                    app[SESSION],
                    entry,
                    spool,
                    "utterance.wav",
                    options,
                    work.job_id,
                    self._settings.backend_timeout_s,
                )
                async with contextlib.aclosing(answer):
                    info = await info_of(answer, entry.provider)
                    text, segments = "", []
                    async for segment in work.watch(segments_of(answer, info, entry.provider)):
                        if entry.card.supports_streaming:
                            delta = delta_of(segment, text, wanted)
                            text += delta.delta
                            if logprobs is not None:
                                logprobs += delta.logprobs or []
                            await self._delta(item_id, delta.delta, delta.logprobs)
                        else:
                            segments.append(segment)
        if not entry.card.supports_streaming:
            text = join_texts([s.text for s in segments])
            if logprobs is not None:
                logprobs = logprobs_of([w for s in segments for w in s.words or []])
            await self._delta(item_id, text, logprobs)
        record.audio_s = info.duration
        return text, info.duration, logprobs

    async def _delta(self, item_id: str, delta: str, logprobs: list[Logprob] | None) -> None:
        await self._send(
            event(
                f"{TRANSCRIPTION}.delta",
                item_id=item_id,
                content_index=0,
                delta=delta,
                **_logprobs_field(logprobs),
            )
        )

    async def _failed(self, item_id: str, error: AistackError) -> None:
        await self._send(
            event(
                f"{TRANSCRIPTION}.failed",
                item_id=item_id,
                content_index=0,
                error=events.error_body(error),
            )
        )

    # --- sending ---------------------------------------------------------------------

    async def _send_error(self, error: AistackError, event_id: str | None = None) -> None:
        exchange.of(self._request).error_kind = error.body.kind
        await self._send(error_event(error, event_id))

    async def _send(self, server_event: dict[str, Any]) -> None:
        """Queue one event for the client: never waits on it, so a client that stops
        reading cannot hold an utterance's slot (`relay`). To a client that has gone,
        nothing (the session is ending)."""
        if self._ws.closed:
            return
        await self._outbox.put(json.dumps(server_event).encode())


def _logprobs_field(logprobs: list[Logprob] | None) -> dict[str, Any]:
    """An event's `logprobs` as OpenAI's types have them; none when not asked for."""
    if logprobs is None:
        return {}
    return {"logprobs": [entry.model_dump() for entry in logprobs]}
