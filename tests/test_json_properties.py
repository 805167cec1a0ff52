"""Properties of the JSON routes (chat, speech) on a live edge, by hypothesis: whatever
the body (any JSON value, any bytes), its type and its encoding (plain, gzip, deflate,
cut short, unknown), the answer is the envelope with its kind's status, never a 5xx but
the 503 of a capability that is not there (this edge has no backend)."""

import gzip
import json
import zlib
from collections import Counter

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aistack_testing.edge import envelope

STATUS_OF_KIND = {"malformed": 400, "overflow": 413, "network": 503}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)
chat_like = st.fixed_dictionaries(
    {"model": st.text(max_size=10), "messages": st.lists(json_values, max_size=3)},
    optional={"stream": json_values, "input": json_values, "voice": json_values},
)
bodies = (
    chat_like.map(lambda value: json.dumps(value).encode())
    | json_values.map(lambda value: json.dumps(value).encode())
    | st.binary(max_size=300)
    | st.integers(1, 5000).map(lambda depth: b"[" * depth + b"]" * depth)
)
ENCODINGS = {
    None: lambda body: body,
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "gzip-cut": lambda body: gzip.compress(body)[: max(1, len(body) // 2)],
    "compress": lambda body: body,
    "br": lambda body: body,
}
CONTENT_TYPES = [None, "application/json", "application/vnd.x+json", "text/plain", "audio/wav"]


@pytest.fixture(scope="module")
def edge(module_services):
    return module_services.start("aistack_edge", env={"AISTACK_MAX_JSON_MB": "0.01"})


PATHS = ["/v1/chat/completions", "/v1/audio/speech"]


def test_any_json_body_gets_the_envelope(edge):
    """Every answer is the envelope with its kind's status; and the run proves it reached
    each route past validation (a 503: the body was read, and no backend was there), and
    refused some bodies as malformed and some as too large: a run where every body is
    refused at the door (or none is) proves less, and fails."""
    seen: Counter[tuple[str, int]] = Counter()

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        path=st.sampled_from(PATHS),
        body=bodies,
        encoding=st.sampled_from(sorted(ENCODINGS, key=str)),
        content_type=st.sampled_from(CONTENT_TYPES),
        padding=st.sampled_from([0, 20_000]),
    )
    def fuzz(path, body, encoding, content_type, padding):
        """`padding` spaces after the body pass the 10 kB limit, once decoded (a gzip of
        them is a few dozen bytes): an overflow, however it came."""
        body += b" " * padding
        headers = {"Content-Type": content_type} if content_type else {}
        if encoding:
            headers["Content-Encoding"] = encoding.removesuffix("-cut")
        with httpx.Client(timeout=30) as client:
            answer = client.post(
                edge.url + path, content=ENCODINGS[encoding](body), headers=headers
            )
        assert answer.status_code in STATUS_OF_KIND.values(), answer.text
        error = envelope(answer.content)
        assert STATUS_OF_KIND[error["kind"]] == answer.status_code, error
        seen[path, answer.status_code] += 1

    fuzz()
    for path in PATHS:
        assert all(seen[path, status] for status in (400, 413, 503)), (path, dict(seen))
