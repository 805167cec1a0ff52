"""What a relay passes of a backend's answer headers (RFC 9110 §7.6.1): the speech and
chat relays answer with `end_to_end` of the upstream's headers. The vLLM-Omni fake sends
no hop-by-hop header, so the rule is checked here on the function itself."""

from multidict import CIMultiDict

from aistack_edge.upstreams.http import end_to_end


def test_hop_by_hop_and_named_headers_are_dropped_others_kept() -> None:
    upstream = CIMultiDict(
        [
            ("Content-Type", "audio/wav"),
            ("Connection", "keep-alive, X-Hop"),
            ("Keep-Alive", "timeout=5"),
            ("Transfer-Encoding", "chunked"),
            ("X-Hop", "named by Connection"),
            ("Proxy-Authenticate", "Basic"),
            ("X-Backend", "kept"),
            ("Content-Length", "10"),
        ]
    )
    passed = end_to_end(upstream, drop=("content-length",))
    assert list(passed.items()) == [("Content-Type", "audio/wav"), ("X-Backend", "kept")]
