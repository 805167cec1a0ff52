"""The access log keeps a bounded past, on a real edge process: files older than
AISTACK_ACCESS_LOG_MAX_AGE_DAYS go at start, a day's file is split in parts, and the
oldest parts go once the directory passes AISTACK_ACCESS_LOG_MAX_TOTAL_MB."""

import datetime as dt
import json
import os
import time

import httpx

CAP_MB = 0.02  # about 20 KB: sixty-odd lines


def test_old_files_go_and_the_total_stays_near_the_cap(services, tmp_path):
    logs = tmp_path / "access"
    logs.mkdir()
    month_ago = time.time() - 30 * 86400
    old = logs / "access-2020-01-01.jsonl"
    old.write_text('{"old": true}\n')
    os.utime(old, (month_ago, month_ago))
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    recent = logs / f"access-{yesterday}.jsonl"
    recent.write_text('{"recent": true}\n')
    unrelated = logs / "notes.txt"
    unrelated.write_text("not a log\n")
    os.utime(unrelated, (month_ago, month_ago))
    edge = services.start(
        "aistack_edge",
        env={
            "AISTACK_ACCESS_LOG_DIR": str(logs),
            "AISTACK_ACCESS_LOG_MAX_AGE_DAYS": "7",
            "AISTACK_ACCESS_LOG_MAX_TOTAL_MB": str(CAP_MB),
        },
    )
    assert not old.exists() and recent.exists() and unrelated.exists()

    with httpx.Client(base_url=edge.url, timeout=10) as client:
        for n in range(300):
            assert client.get("/health", headers={"X-Request-ID": f"line-{n}"}).status_code == 200
    deadline = time.monotonic() + 5
    while not any("line-299" in f.read_text() for f in logs.glob("access-*.jsonl")):
        assert time.monotonic() < deadline, "the last line was not written"
        time.sleep(0.1)

    files = sorted(logs.glob("access-*.jsonl"), key=lambda f: f.stat().st_mtime)
    total = sum(f.stat().st_size for f in files)
    cap = CAP_MB * 2**20
    # The cap, give or take the batch that went past it (lines go in 0.1 s batches).
    assert total <= cap * 1.5, (total, [f.name for f in files])
    assert not recent.exists()  # the oldest went first
    today = dt.datetime.now(dt.UTC).date()
    assert len(files) >= 4 and all(f.name.startswith(f"access-{today}") for f in files)
    lines = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    ids = [line["request_id"] for line in lines]
    assert ids == sorted(ids, key=lambda i: int(i.split("-")[1]))  # oldest parts first
    assert ids[-1] == "line-299" and "line-0" not in ids
