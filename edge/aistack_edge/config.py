"""The edge's settings: every one an `AISTACK_`-prefixed environment variable."""

import ipaddress
import logging
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

UrlList = Annotated[list[str], NoDecode]
NameList = Annotated[list[str], NoDecode]
ContainerMap = Annotated[dict[str, str], NoDecode]
NetworkList = Annotated[list[ipaddress.IPv4Network | ipaddress.IPv6Network], NoDecode]


def _items(value: object) -> list[str]:
    """A list setting's items: a comma-separated string, or a list; blanks dropped."""
    items = value.split(",") if isinstance(value, str) else value
    return [text for text in (str(item).strip() for item in items) if text]  # type: ignore[union-attr]


class EdgeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AISTACK_")

    host: str = "127.0.0.1"
    port: int = 11500
    redis_url: str | None = None
    slot_key: str = "aistack:gpu-slot"
    slot_ttl_ms: int = Field(10_000, ge=100)
    slot_wait_s: float = Field(0.0, ge=0)
    retry_after_s: int = Field(5, ge=0)
    max_upload_mb: float = Field(100.0, gt=0)
    max_json_mb: float = Field(2.0, gt=0)
    """The largest JSON body (chat, speech), counted after decompression."""
    slot_wait_max: int = Field(16, ge=1)
    """How many requests of this edge may wait in line for the slot (HTTP ones with
    AISTACK_SLOT_WAIT_S > 0, and realtime utterances, which always wait); one more is
    refused as busy at once."""
    asr_backends: UrlList = []
    tts_backends: UrlList = []
    llm_upstreams: UrlList = []
    diarize_backends: UrlList = []
    """Diarizers (services/diarize-senko): who spoke when, for `diarized_json`."""
    diarize_match_threshold: float = Field(0.7, gt=0, le=1)
    """The cosine similarity a speaker's voice print needs with a known speaker's
    reference to take that speaker's name."""
    probe_timeout_s: float = Field(1.0, gt=0)
    models_cache_s: float = Field(3.0, ge=0)
    backend_timeout_s: float = Field(600.0, gt=0)
    tts_ref_audio_dir: Path | None = None
    """The only server directory whose files a TTS request's `ref_audio` may name."""
    tts_ref_audio_urls: bool = False
    """Let `ref_audio` be an http(s) URL, which the TTS backend then fetches."""
    ollama_url: str | None = None
    """Ollama's base URL: its models join the LLM list (from /api/tags); unset: no Ollama."""
    llm_provider: str = "llama.cpp"
    """The provider name in errors about AISTACK_LLM_UPSTREAMS servers whose cards name none."""
    llm_keep_alive: str = "30s"
    """How long Ollama keeps a model loaded after a chat that gives no `keep_alive` of its
    own (set through Ollama's own API: its OpenAI-compatible endpoint ignores the field)."""
    swap_policy: Literal["exclusive", "shared"] = "exclusive"
    """exclusive: before a workload, idle models of the other capabilities leave the GPU."""
    swap_timeout_s: float = Field(2.0, gt=0)
    """How long each eviction call may take before it is given up (and logged)."""
    stop_grace_s: float = Field(10.0, gt=0)
    """After an early end, how long the backend has to stop the job before the edge
    logs it as stuck (and counts an overrun); the slot stays held until it has stopped."""
    idle_check: bool = True
    """After taking the slot, wait until no backend on its GPU runs a job (from any edge)."""
    idle_wait_s: float = Field(2.0, ge=0)
    """How long a workload that holds the slot waits for the GPU's backends to be idle
    (AISTACK_SLOT_WAIT_S when longer) before a 503 busy."""
    idle_check_backends: UrlList = []
    """More backends on this slot's GPU whose running jobs the idle check reads: those
    that other edges route to and this one does not."""
    restart_containers: ContainerMap = {}
    """Backends whose container the edge restarts (Docker Engine API) when a job there
    does not stop within the grace: `URL=container` pairs, comma-separated."""
    docker_socket: Path = Path("/var/run/docker.sock")
    """The Docker Engine API's unix socket, for `restart_containers`."""
    client_write_timeout_s: float = Field(30.0, gt=0)
    """A client that reads nothing of its answer for this long is taken as gone: its
    connection is closed (the answer is read from the backend meanwhile all the same)."""

    # Live transcription sessions (the Realtime API over WebSocket, /v1/realtime).
    realtime_queue: int = Field(4, ge=1)
    """Committed utterances of one session that may wait behind the one being
    transcribed; one more drops the oldest waiting one, with a `failed` event that
    says so."""
    realtime_slot_wait_s: float = Field(60.0, gt=0)
    """How long an utterance waits for the GPU slot before it fails (`failed`, `network`)."""
    realtime_max_buffer_s: float = Field(300.0, gt=0)
    """The longest input audio buffer: an append past it is an `overflow` error; server
    VAD commits a turn that reaches it."""
    realtime_max_message_mb: float = Field(15.0, gt=0)
    """The largest base64 audio of one append (OpenAI's limit): a WebSocket message may
    be 64 KiB more, for the rest of its event."""
    realtime_max_sessions: int = Field(32, ge=1)
    """Sessions open at once on this edge; one more is refused (`error` event, close
    1013)."""
    realtime_max_sessions_per_client: int = Field(8, ge=1)
    """Sessions open at once from one client address (behind a trusted proxy, the one
    it forwards); one more is refused the same way."""

    # Background transcription jobs (`background=true`, docs/jobs.md).
    jobs_dir: Path | None = None
    """Where a job's audio is spooled (decoded, 16 kHz mono PCM) until the job ends; unset:
    a temporary directory of this process."""
    jobs_keep_s: float = Field(86_400.0, gt=0)
    """How long a finished job (and its result) is kept before it is deleted."""
    jobs_window_s: float = Field(30.0, ge=1.0)
    """A job is transcribed a window of at most this long at a time (cut in its quietest
    moment): the progress step, the checkpoint, and the longest an interactive request
    waits for a job to give the GPU slot up."""
    jobs_max_queued: int = Field(16, ge=1)
    """Jobs queued or running at once; one more is refused (413 `overflow`)."""
    jobs_max_spool_mb: float = Field(4096.0, gt=0)
    """The decoded audio of unfinished jobs, all together; a job past it is refused (413)."""
    jobs_key: str = "aistack:jobs"
    """The prefix of the jobs' Redis keys (with AISTACK_REDIS_URL)."""
    jobs_claim_after_s: float = Field(60.0, gt=0)
    """With Redis: a running job whose replica has not renewed its claim for this long
    (it died) is taken over by another, from its checkpoint."""
    jobs_interactive_wait_s: float = Field(300.0, gt=0)
    """How long an interactive request waits for a background job's window to end."""

    metrics: bool = True
    """Count requests for /metrics (a runtime toggle too)."""
    access_log_dir: Path | None = None
    """One JSON line per request, a file per day (UTC) here; unset: no access log."""
    capture: bool = False
    """Keep request and answer bodies in AISTACK_CAPTURE_DIR (a runtime toggle too)."""
    capture_dir: Path | None = None
    capture_max_body_kb: int = Field(256, ge=1)
    capture_max_age_h: float = Field(24.0, gt=0)
    capture_max_total_mb: float = Field(512.0, gt=0)
    admin_token: SecretStr | None = None
    """The Bearer token of /admin and /admin/api/*; unset or empty: admin state changes are
    refused, and the reads too unless both the edge and the client are on loopback."""
    admin_recent: int = Field(200, ge=1)
    """How many finished requests the admin page's ring keeps."""
    trace_file: Path | None = None
    """Append each finished span to this file as a JSON line (tests, debugging)."""

    @field_validator(
        "asr_backends",
        "tts_backends",
        "llm_upstreams",
        "idle_check_backends",
        "diarize_backends",
        mode="before",
    )
    @classmethod
    def _split_urls(cls, value: object) -> object:
        """Comma-separated base URLs, trailing slashes dropped."""
        return [url.rstrip("/") for url in _items(value)]

    @field_validator("restart_containers", mode="before")
    @classmethod
    def _split_pairs(cls, value: object) -> object:
        """`URL=container` pairs, comma-separated: {base URL: container}."""
        if not isinstance(value, str):
            return value
        pairs = {}
        for item in _items(value):
            url, _, container = item.rpartition("=")
            if not url or not container:
                raise ValueError(f"not URL=container: {item!r}")
            pairs[url.strip().rstrip("/")] = container.strip()
        return pairs

    @field_validator("ollama_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        """A base URL without its trailing slash; empty: unset."""
        return value.strip().rstrip("/") or None if value else None

    # Who may reach what (the admin routes, /metrics through a proxy, the Host header),
    # and how much capture and the access log may keep.
    trusted_proxies: NetworkList = []
    """Addresses or networks of proxies whose X-Forwarded-For names the real client."""
    allowed_hosts: NameList = ["edge", "edge-cpu", "aistack"]
    """Host names the edge answers to besides localhost names, loopback addresses and
    the address a connection reached (the compose service names and the k8s Service's
    by default; a value replaces them)."""
    allowed_origins: NameList = []
    """Web origins (`scheme://host[:port]`, `*` for any) whose pages may call the edge
    besides its own (the admin page's); a request from any other is refused (403)."""
    capture_queue: int = Field(64, ge=1)
    """Captured exchanges waiting for the writer; one more is dropped (and counted)."""
    access_log_max_age_days: float = Field(14.0, gt=0)
    """Access log files last written longer ago than this are deleted."""
    access_log_max_total_mb: float = Field(1024.0, gt=0)
    """Past this, the oldest access log files are deleted (a day's file is split in parts)."""

    @field_validator("admin_token", mode="before")
    @classmethod
    def _no_empty_token(cls, value: object) -> object:
        """An empty (or blank) token is no token: it would match an empty Bearer."""
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(text, str) and not text.strip():
            logging.getLogger(__name__).warning(
                "AISTACK_ADMIN_TOKEN is empty: treated as unset (admin changes refused)"
            )
            return None
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_networks(cls, value: object) -> object:
        """Comma-separated addresses or CIDR networks (an address is a network of one)."""
        return [ipaddress.ip_network(item, strict=False) for item in _items(value)]

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_names(cls, value: object) -> object:
        """Comma-separated host names, compared without case or a trailing dot."""
        return [name.lower().rstrip(".") for name in _items(value)]

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        """Comma-separated origins, each as `origins.origin_of` writes it."""
        from aistack_edge.origins import ANY, origin_of  # it imports the app state, and so this

        origins = []
        for item in _items(value):
            origin = ANY if item == ANY else origin_of(item)
            if origin is None:
                raise ValueError(f"{item!r} is not an origin (scheme://host[:port])")
            origins.append(origin)
        return origins

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def jobs_max_spool_bytes(self) -> int:
        return int(self.jobs_max_spool_mb * 1024 * 1024)

    @property
    def max_json_bytes(self) -> int:
        return int(self.max_json_mb * 1024 * 1024)
