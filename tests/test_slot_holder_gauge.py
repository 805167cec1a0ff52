"""The aistack_slot_holder gauge goes back to 0 on the labels it went up on, even when the
request's model changed while it held the slot (detect-then-route: the detector's model
takes the slot, the routed model is the request's model by its release)."""

from aistack_edge.config import EdgeSettings
from aistack_edge.observability import Observability, exchange


def gauge(observer: Observability) -> dict[tuple[str, str], float]:
    return {
        (sample.labels["capability"], sample.labels["model"]): sample.value
        for metric in observer.metrics.slot_holder.collect()
        for sample in metric.samples
    }


def test_the_holder_gauge_is_released_on_the_labels_it_was_raised_on():
    observer = Observability(EdgeSettings(), lambda: [], lambda: [])
    record, token = exchange.begin_part("r1", "asr", 0.0)
    try:
        record.model = "whisper-base"  # the detector, asked first
        observer.acquired(0.0)
        record.model = "nvidia/parakeet-tdt-0.6b-v3"  # routed on what it heard
        observer.released(1.0)
    finally:
        exchange.end(token)
    assert all(value == 0 for value in gauge(observer).values()), gauge(observer)
