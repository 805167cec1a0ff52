"""What every backend reads from its environment, whatever its engine."""

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Environment variables with the `AISTACK_` prefix. A service adds its own, host and
    port among them under names of its own (`AISTACK_ASR_WHISPER_PORT`,
    `AISTACK_PIPER_PORT`), so that services started from one shell don't share them.

    A field with a `validation_alias` is read from that name only: no `populate_by_name`,
    which would let the edge's own `AISTACK_HOST` and `AISTACK_PORT` (the field names
    under the prefix) move a backend onto the LAN."""

    model_config = SettingsConfigDict(env_prefix="AISTACK_", extra="ignore")

    log_level: str = "INFO"
    trace_file: Path | None = None
    """Append each finished span to this file as a JSON line (tests, debugging)."""
    stop_exit_s: float = 120.0
    """A cancelled job (`DELETE /jobs/{id}`) that has not stopped this long after the
    cancel makes the service exit (code 70), so that its supervisor restarts it and its
    memory, GPU memory included, is freed (a model load cannot be cancelled); 0: never."""
    models_dir: Path | None = None
    """The folder `make models` fills for this backend (its `/models` volume). Set, a
    backend with weights in that catalogue answers `GET /weights` and `POST /weights/pull`
    (aistack_service.weights_routes), which the admin page shows and starts."""
