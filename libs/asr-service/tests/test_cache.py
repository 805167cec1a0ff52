"""ModelCache: ref counts, idle eviction, one main model resident."""

import threading

import pytest

from aistack_asr.cache import ModelCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Loader:
    """Records loads and unloads of plain objects standing for models."""

    def __init__(self) -> None:
        self.loaded: list[str] = []
        self.unloaded: list[str] = []

    def load(self, model_id: str) -> dict:
        self.loaded.append(model_id)
        return {"id": model_id}

    def unload(self, model: dict) -> None:
        self.unloaded.append(model["id"])


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def loader() -> Loader:
    return Loader()


@pytest.fixture
def cache(loader: Loader, clock: Clock) -> ModelCache:
    return ModelCache(loader.load, loader.unload, clock)


def test_loads_once_and_reuses(cache: ModelCache, loader: Loader) -> None:
    with cache.use("a") as first:
        pass
    with cache.use("a") as second:
        assert second is first
    assert loader.loaded == ["a"]
    assert cache.loaded() == {"a"}


def test_in_use_is_counted_and_never_evicted(
    cache: ModelCache, loader: Loader, clock: Clock
) -> None:
    with cache.use("a"), cache.use("a"):
        assert cache.in_use() == {"a": 2}
        clock.now = 10_000
        assert cache.evict_idle() == []
        assert cache.evict_idle(1.0) == []
    assert cache.in_use() == {}
    assert cache.evict_idle() == ["a"]
    assert loader.unloaded == ["a"]
    assert cache.loaded() == set()


def test_idle_eviction_waits_for_keep_alive(cache: ModelCache, clock: Clock) -> None:
    with cache.use("a"):
        clock.now = 100.0
    clock.now = 104.0
    assert cache.evict_idle(5.0) == []
    clock.now = 105.0
    assert cache.evict_idle(5.0) == ["a"]


def test_loading_another_model_evicts_the_idle_one(cache: ModelCache, loader: Loader) -> None:
    with cache.use("a"):
        pass
    with cache.use("b"):
        assert cache.loaded() == {"b"}
    assert loader.unloaded == ["a"]


def test_loading_another_model_keeps_one_in_use(cache: ModelCache, loader: Loader) -> None:
    with cache.use("a"), cache.use("b"):
        assert cache.loaded() == {"a", "b"}
    assert loader.unloaded == []


def test_a_failed_load_leaves_nothing_behind(clock: Clock) -> None:
    def fail(model_id: str) -> None:
        raise RuntimeError("no such model")

    cache = ModelCache(fail, lambda model: None, clock)
    with pytest.raises(RuntimeError), cache.use("a"):
        pass
    assert cache.loaded() == set()
    assert cache.in_use() == {}


def test_concurrent_users_share_one_load(loader: Loader) -> None:
    release = threading.Event()

    def slow_load(model_id: str) -> dict:
        release.wait(5)
        return loader.load(model_id)

    cache = ModelCache(slow_load, loader.unload)
    got: list[dict] = []

    def user() -> None:
        with cache.use("a") as model:
            got.append(model)

    threads = [threading.Thread(target=user) for _ in range(4)]
    for thread in threads:
        thread.start()
    release.set()
    for thread in threads:
        thread.join(5)
    assert loader.loaded == ["a"]
    assert len(got) == 4 and all(model is got[0] for model in got)
