"""Every GPU backend's weights, fetched into the folders the backends load them from:
resumable, verified against the sizes and hashes the hub reports, with progress events.
`make models` (scripts/models.py) runs it for every backend at once; a backend's own
`GET /weights` and `POST /weights/pull` (aistack_service.weights_routes) for itself.

A root folder holds one folder per backend, each the backend's `/models` (compose mounts
each volume there in the `models` service):

    whisper/     models--Systran--faster-whisper-<size>/...   a hub cache (asr-whisper)
    parakeet/    models--nvidia--parakeet-tdt-0.6b-v3/...    a hub cache: the .nemo
    sensevoice/  iic/SenseVoiceSmall, iic/speech_fsmn_vad_zh-cn-16k-common-pytorch
    qwen3/       hub/models--Qwen--Qwen3-TTS-12Hz-0.6B-CustomVoice/...    HF_HOME's hub cache

The hub is Hugging Face's, or the mirror that HF_ENDPOINT names. huggingface_hub lists the
files and reads their metadata; the transfer is ours (`download`), so that a cut download
resumes across runs; each new file's hash is checked against the listing (sha256 for LFS
files, the git blob id for the others).
"""

from __future__ import annotations

import fcntl
import fnmatch
import hashlib
import os
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

WHISPER_DEFAULT = "large-v3"
WHISPER_FILES = (
    "config.json",
    "model.bin",
    "tokenizer.json",
    "vocabulary.*",
    "preprocessor_config.json",
)


@dataclass(frozen=True)
class Weights:
    """One hub repository a backend needs, and where in its folder it goes."""

    backend: str
    volume: str  # the backend's folder under --root (its /models)
    repo_id: str
    place: str  # "cache": a hub cache at `folder`; "folder": the files themselves at `folder`
    folder: str = ""
    allow: tuple[str, ...] = ("*",)

    def wanted(self, path: str) -> bool:
        return any(fnmatch.fnmatch(path, pattern) for pattern in self.allow)

    def target(self, root: Path) -> Path:
        return root / self.volume / self.folder


def whisper_repo(size: str) -> str:
    """faster-whisper's own names for its converted models (faster_whisper/utils.py)."""
    if size == "large-v3-turbo":
        return "mobiuslabsgmbh/faster-whisper-large-v3-turbo"
    if size.startswith("distil-"):
        return f"Systran/faster-distil-whisper-{size.removeprefix('distil-')}"
    return f"Systran/faster-whisper-{size}"


def catalogue(whisper_sizes: Iterable[str]) -> list[Weights]:
    """What the compose `gpu` profile's backends load, each from where its loader looks."""
    whisper = [
        Weights("asr-whisper", "whisper", whisper_repo(size), "cache", allow=WHISPER_FILES)
        for size in whisper_sizes
    ]
    return [
        *whisper,
        # services/asr-parakeet: the newest *.nemo anywhere under /models
        Weights(
            "asr-parakeet",
            "parakeet",
            "nvidia/parakeet-tdt-0.6b-v3",
            "cache",
            allow=("*.nemo",),
        ),
        # services/asr-sensevoice: ModelScope's folder names, which the image's settings name;
        # FunASR publishes the same files on the Hugging Face hub
        # (funasr/download/name_maps_from_hub.py: fsmn-vad is funasr/fsmn-vad there)
        Weights(
            "asr-sensevoice",
            "sensevoice",
            "FunAudioLLM/SenseVoiceSmall",
            "folder",
            "iic/SenseVoiceSmall",
            ("config.yaml", "model.pt", "am.mvn", "*.bpe.model", "configuration.json"),
        ),
        Weights(
            "asr-sensevoice",
            "sensevoice",
            "funasr/fsmn-vad",
            "folder",
            "iic/speech_fsmn_vad_zh-cn-16k-common-pytorch",
            ("config.yaml", "model.pt", "am.mvn", "configuration.json"),
        ),
        # services/tts-qwen3: HF_HOME=/models, so the hub cache is /models/hub
        Weights(
            "tts-qwen3",
            "qwen3",
            "Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice",
            "cache",
            "hub",
            ("*.json", "*.safetensors", "*.txt", "*.model", "*.py", "speech_tokenizer/*"),
        ),
    ]


def whisper_sizes(value: str | None = None) -> list[str]:
    """The Whisper sizes named (comma-separated), else AISTACK_WHISPER_SIZES's, else the
    default: the same for `make models` and for asr-whisper's own pulls."""
    value = value or os.environ.get("AISTACK_WHISPER_SIZES") or WHISPER_DEFAULT
    return [size.strip() for size in value.split(",") if size.strip()]


def of_backend(backend: str, sizes: Iterable[str]) -> list[Weights]:
    """The weights of one backend, in its own folder (its `/models`) rather than under a
    root of every backend's folders."""
    return [replace(w, volume="") for w in catalogue(sizes) if w.backend == backend]


@contextmanager
def locked(root: Path, wait: bool = True) -> Iterator[bool]:
    """One fetch at a time into a folder (`make models` beside a backend's own pull):
    waits for the other, or, with `wait` False, yields False while it runs."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".models.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True


@dataclass(frozen=True)
class HubFile:
    path: str
    size: int
    sha256: str | None  # LFS files
    blob_id: str  # git's blob id: the hash of the others


@dataclass
class Outcome:
    weights: Weights
    files: int = 0
    size: int = 0
    fetched: int = 0  # bytes moved this run
    error: str = ""
    missing: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def status(self) -> str:
        if self.error:
            return "failed"
        if self.missing:
            return "missing"
        return "fetched" if self.fetched else "present"


Progress = Callable[[dict], None]
"""Receives events: {"status": ..., "repo": ..., "file": ..., "digest": ..., "completed": n,
"total": n}, the fields of Ollama's pull progress (its api/types.go `ProgressResponse`) and
the repository and file they are of."""


def file_event(status: str, repo_id: str, hub_file: HubFile) -> dict:
    """An event about one file; its digest as the hub lists it (sha256 for LFS files,
    git's blob id for the others), where Ollama's is its layer's."""
    digest = f"sha256:{hub_file.sha256}" if hub_file.sha256 else f"git:{hub_file.blob_id}"
    return {"status": status, "repo": repo_id, "file": hub_file.path, "digest": digest}


def listing(weights: Weights, revision: str) -> list[HubFile]:
    """The repository's files at `revision` that the backend needs, as the hub lists them."""
    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import RepoFile

    files = [
        HubFile(e.path, e.size, e.lfs.sha256 if e.lfs else None, e.blob_id)
        for e in HfApi().list_repo_tree(weights.repo_id, revision=revision, recursive=True)
        if isinstance(e, RepoFile) and weights.wanted(e.path)
    ]
    if not files:
        raise RuntimeError(f"{weights.repo_id} lists none of {', '.join(weights.allow)}")
    return files


def local_path(weights: Weights, root: Path, hub_file: HubFile, revision: str) -> Path | None:
    """Where the file is once fetched (None: a cache whose snapshot is not known yet)."""
    base = weights.target(root)
    if weights.place == "folder":
        return base / hub_file.path
    repo = base / ("models--" + weights.repo_id.replace("/", "--"))
    ref = repo / "refs" / revision
    if not ref.is_file():
        return None
    return repo / "snapshots" / ref.read_text().strip() / hub_file.path


def verify(path: Path, hub_file: HubFile) -> str:
    """ "" when `path` is the file the hub lists, else what differs."""
    size = path.stat().st_size
    if size != hub_file.size:
        return f"{hub_file.path}: {size} bytes, the hub says {hub_file.size}"
    if hub_file.sha256:
        digest = hashlib.sha256()
        expected = hub_file.sha256
    else:  # git's blob id: sha1 of "blob <size>\0" and the content
        digest = hashlib.sha1(f"blob {size}\0".encode())
        expected = hub_file.blob_id
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    if digest.hexdigest() != expected:
        return f"{hub_file.path}: hash {digest.hexdigest()}, the hub says {expected}"
    return ""


def progress_bar(report: Progress | None, repo_id: str, hub_file: HubFile, done: int):
    """A bar per file on the terminal, and the same figures as events for a caller. The
    count is kept here: a disabled tqdm (no terminal) counts nothing."""
    from tqdm import tqdm

    class Bar(tqdm):
        completed = done

        def update(self, n=1):
            shown = super().update(n)
            self.completed += n
            if report is not None:
                event = file_event("pulling", repo_id, hub_file)
                report({**event, "completed": self.completed, "total": hub_file.size})
            return shown

    return Bar(
        desc=hub_file.path,
        total=hub_file.size,
        initial=done,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        disable=report is not None and not sys.stderr.isatty(),
    )


def fetch_file(
    weights: Weights, root: Path, hub_file: HubFile, revision: str, report: Progress | None
) -> int:
    """One file into its place; the bytes moved. It is written to `<name>.part` and asked
    for from where that ends (a Range request) when a run was cut off: huggingface_hub's
    own download writes to a name unique to its process and drops it on failure
    (file_download._download_to_tmp_and_move), so it resumes only within one run."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.utils import build_hf_headers

    meta = get_hf_file_metadata(hf_hub_url(weights.repo_id, hub_file.path, revision=revision))
    if meta.size is not None and meta.size != hub_file.size:
        raise RuntimeError(
            f"{hub_file.path}: the hub lists {hub_file.size} bytes, serves {meta.size}"
        )
    base = weights.target(root)
    if weights.place == "folder":
        dest = base / hub_file.path
    else:
        repo = base / ("models--" + weights.repo_id.replace("/", "--"))
        dest = repo / "blobs" / str(meta.etag)
    moved = 0
    if not (dest.is_file() and dest.stat().st_size == hub_file.size):
        moved = download(meta.location, dest, hub_file, weights.repo_id, report, build_hf_headers())
    if weights.place == "cache":  # the hub cache's layout, as huggingface_hub leaves it
        link = repo / "snapshots" / str(meta.commit_hash) / hub_file.path
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.symlink_to(os.path.relpath(dest, link.parent))
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / revision).write_text(str(meta.commit_hash))
    return moved


def download(
    url: str,
    dest: Path,
    hub_file: HubFile,
    repo_id: str,
    report: Progress | None,
    hub_headers: dict,
) -> int:
    """`url` into `dest` through `dest.part`, resumed from what that holds; verified."""
    import urllib.request
    from urllib.parse import urlsplit

    from huggingface_hub import constants

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    if have > hub_file.size:
        part.unlink()
        have = 0
    # The hub's credentials go to the hub only, not to the storage host it redirects to.
    same = urlsplit(url).netloc == urlsplit(constants.ENDPOINT).netloc
    headers = {
        "Accept-Encoding": "identity",
        **({k: v for k, v in hub_headers.items() if k.lower() == "authorization"} if same else {}),
    }
    if have < hub_file.size:
        if have:
            headers["Range"] = f"bytes={have}-"
        with urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=60
        ) as answer:
            if have and answer.status != 206:  # the server ignored the Range: start again
                have = 0
            bar = progress_bar(report, repo_id, hub_file, have)
            with part.open("ab" if have else "wb") as out, bar:
                while chunk := answer.read(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
    if problem := verify(part, hub_file):
        part.unlink()  # the next run fetches it again
        raise RuntimeError(problem)
    part.replace(dest)
    return hub_file.size - have


def fetch(weights: Weights, root: Path, revision: str, report: Progress | None) -> Outcome:
    """Every file the backend needs from the hub; what is there and whole is left alone."""
    outcome = Outcome(weights)
    files = listing(weights, revision)
    if report is not None:
        report({"status": "listed", "repo": weights.repo_id, "files": len(files),
                "total": sum(f.size for f in files)})  # fmt: skip
    for hub_file in files:
        there = local_path(weights, root, hub_file, revision)
        status = "present"
        if not (there is not None and there.is_file() and there.stat().st_size == hub_file.size):
            outcome.fetched += fetch_file(weights, root, hub_file, revision, report)
            status = "verified"
        if report is not None:
            event = file_event(status, weights.repo_id, hub_file)
            report({**event, "completed": hub_file.size, "total": hub_file.size})
        outcome.files += 1
        outcome.size += hub_file.size
    return outcome


def copy(weights: Weights, root: Path, source: Path) -> Outcome:
    """The backend's files from another folder of the same layout (a disk filled by
    `make models` on a connected machine): each file missing here, or of another size."""
    outcome = Outcome(weights)
    origin = weights.target(source)
    if weights.place == "cache":
        origin = origin / ("models--" + weights.repo_id.replace("/", "--"))
    if not origin.is_dir():
        outcome.missing.append(str(origin))
        return outcome
    for path in sorted(origin.rglob("*")):
        relative = path.relative_to(weights.target(source))
        if path.is_dir() or ".incomplete" in path.name:
            continue
        there = weights.target(root) / relative
        there.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() and weights.place == "cache":  # a snapshot's link to its blob
            if not there.is_symlink():
                there.symlink_to(os.readlink(path))
            continue
        size = path.stat().st_size
        if not there.is_file() or there.stat().st_size != size:
            partial = there.with_name(there.name + ".copying")
            shutil.copyfile(path, partial)
            partial.replace(there)
            outcome.fetched += size
        outcome.files += 1
        outcome.size += size
    return outcome


def check(weights: Weights, root: Path) -> Outcome:
    """What is on disk, without asking the hub: the loader's own test of presence."""
    outcome = Outcome(weights)
    target = weights.target(root)
    if weights.place == "cache":
        snapshots = target / ("models--" + weights.repo_id.replace("/", "--")) / "snapshots"
        found = [p for p in snapshots.rglob("*") if p.is_file()] if snapshots.is_dir() else []
    else:
        found = [p for p in target.rglob("*") if p.is_file() and ".cache" not in p.parts]
    found = [
        p
        for p in found
        if any(fnmatch.fnmatch(p.name, a.rsplit("/", 1)[-1]) for a in weights.allow)
    ]
    if not found:
        outcome.missing.append(weights.repo_id)
    outcome.files = len(found)
    outcome.size = sum(p.stat().st_size for p in found)
    return outcome


def human(size: int) -> str:
    return f"{size / 1e9:.2f} GB" if size >= 1e9 else f"{size / 1e6:.1f} MB"


def on_disk(weights: Weights, root: Path, why: str) -> Outcome:
    """What is on disk, for when the hub can't be asked."""
    outcome = check(weights, root)
    if outcome.missing:
        outcome.error = f"the hub can't be reached ({why}) and nothing is here"
    else:
        outcome.note = f"not checked against the hub ({why})"
    return outcome


def summary(outcomes: list[Outcome], root: Path) -> str:
    rows = [("backend", "weights", "status", "size", "where")]
    for o in outcomes:
        where = o.weights.target(root)
        rows.append((o.weights.backend, o.weights.repo_id, o.status, human(o.size), str(where)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    for o in outcomes:
        if o.error or o.note:
            lines.append(f"{o.weights.repo_id}: {o.error or o.note}")
    return "\n".join(lines)


def chown(root: Path, owner: str) -> None:
    """The backends run as uid 10001 and read (tts-qwen3's hub client also locks) there."""
    uid, _, gid = owner.partition(":")
    for path in [root, *root.rglob("*")]:
        os.chown(path, int(uid), int(gid or uid), follow_symlinks=False)


def run(
    root: Path,
    wanted: list[Weights],
    *,
    source: Path | None = None,
    only_check: bool = False,
    revision: str = "main",
    report: Progress | None = None,
) -> list[Outcome]:
    outcomes = []
    hub_away = ""  # once the hub can't be reached, the rest is only checked on disk
    for weights in wanted:
        try:
            if only_check:
                outcome = check(weights, root)
            elif source is not None:
                outcome = copy(weights, root, source)
            elif hub_away:
                outcome = on_disk(weights, root, hub_away)
            else:
                outcome = fetch(weights, root, revision, report)
        except RuntimeError as exc:  # what the hub lists and serves disagree: a failure
            outcome = Outcome(weights, error=str(exc))
        except OSError as exc:  # the hub's own answer (a 404, a 401: HfHubHTTPError), a
            # download cut short (the next run resumes it), our disk: a failure
            outcome = Outcome(weights, error=f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # httpx2's transport errors: the hub away (a box offline)
            hub_away = type(exc).__name__
            outcome = on_disk(weights, root, hub_away)
        outcomes.append(outcome)
        if report is not None:
            report({"status": outcome.status, "repo": weights.repo_id, "total": outcome.size})
    return outcomes
