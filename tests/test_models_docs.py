"""docs/deploy.md's GPU section as a person types it on a bare box, and the weights pages:
the steps in an order that works, every compose service a command names defined in
compose.yaml, each backend's weights with a command, a source, a size and its VRAM."""

import re
from pathlib import Path

import yaml

from aistack_service import weights as models

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = (ROOT / "docs" / "deploy.md").read_text()


def section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end != -1 else None]


GPU = section(DEPLOY, "## From a bare GPU box")


def test_the_steps_come_in_the_order_they_work():
    """The driver checked before anything; the weights before the stack starts (tts-qwen3
    waits for them); Ollama's pull once its container runs (`exec` needs it running)."""
    order = [
        "make doctor PROFILE=gpu",
        "docker compose --profile gpu build",
        "make models",
        "docker compose --profile gpu up -d",
        "docker compose exec ollama ollama pull",
        "/v1/audio/transcriptions",
    ]
    places = [GPU.find(command) for command in order]
    assert -1 not in places, dict(zip(order, places, strict=True))
    assert places == sorted(places), dict(zip(order, places, strict=True))


def test_every_service_a_command_names_is_in_compose():
    services = set(yaml.safe_load((ROOT / "compose.yaml").read_text())["services"])
    pattern = re.compile(
        r"docker compose (?:--profile \w+ )?(?:exec|run --rm(?: --no-deps)?(?: --entrypoint \S+)?"
        r"|restart|logs(?: -f)?|cp \S+) ([a-z0-9-]+)"
    )
    named = set(pattern.findall(DEPLOY))
    assert named and named <= services, named - services


def test_no_copy_recipe_lands_beside_the_folder_the_image_reads():
    """`docker compose cp DIR svc:/models/iic/` copies DIR's contents when /models/iic does
    not exist yet: the model must be copied to its full folder, /models/iic/<name>."""
    for page in (ROOT / "docs").glob("*.md"):
        for target in re.findall(r"compose cp \S+ asr-sensevoice:(\S+)", page.read_text()):
            assert target.rstrip("/").endswith(("SenseVoiceSmall", "pytorch")), (page, target)


def test_each_gpu_backends_weights_have_a_source_a_size_and_vram():
    table = section(DEPLOY, "### Weights, sizes and VRAM")
    for weights in models.catalogue([models.WHISPER_DEFAULT]):
        row = next((line for line in table.splitlines() if weights.repo_id in line), None)
        assert row is not None, weights.repo_id
        assert re.search(r"\d GB", row), row
    assert "VRAM" in table and "ollama" in table.lower()


def test_the_sensevoice_page_the_dockerfile_cites_says_where_its_models_come_from():
    dockerfile = (ROOT / "services/asr-sensevoice/Dockerfile").read_text()
    assert "docs/asr-sensevoice.md" in dockerfile
    page = (ROOT / "docs" / "asr-sensevoice.md").read_text()
    for weights in models.catalogue([]):
        if weights.backend == "asr-sensevoice":
            assert weights.repo_id in page and weights.folder in page
            assert f"/models/{weights.folder}" in dockerfile


def test_parakeet_has_a_command_for_its_weights_and_its_size():
    page = (ROOT / "docs" / "asr-parakeet.md").read_text()
    weights = section(page, "## Weights")
    assert "make models" in weights and "2.5 GB" in weights and "TMPDIR" in weights


def test_the_torch_images_need_a_cuda_13_driver():
    assert re.search(r"asr-parakeet, asr-sensevoice and tts-qwen3 need a driver for CUDA 13", GPU)
    assert "compute capability" in GPU and "7.5" in GPU
