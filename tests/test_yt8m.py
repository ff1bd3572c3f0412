"""YT8M-S inputs (pico.data.yt8m, pico.data.tfrecord): pseudo ids from TFRecord files (written
by an independent writer, the ``tfrecord`` package) and text files, the look-up against a
loopback server, and the selection with its availability page (pico.reporting.availability)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from tfrecord import TFRecordWriter

from pico.data import sources, yt8m
from pico.reporting import availability
from picotest import REPO


def write_tfrecord(path, ids, sequence=False):
    writer = TFRecordWriter(str(path))
    for pseudo in ids:
        if sequence:  # frame-level files: the id in the SequenceExample's context
            writer.write({"id": (pseudo.encode(), "byte")}, {"rgb": ([b"\0" * 4, b"\1" * 4], "byte")})
        else:
            writer.write(
                {"id": (pseudo.encode(), "byte"), "labels": ([3, 17], "int"), "mean_rgb": ([0.5] * 4, "float")}
            )
    writer.close()


@pytest.mark.parametrize("sequence", [False, True])
def test_ids_come_from_video_and_frame_level_tfrecords(tmp_path, sequence):
    write_tfrecord(tmp_path / "train00.tfrecord", ["nXSc", "a0Bz"], sequence)
    write_tfrecord(tmp_path / "train01.tfrecord", ["Zz-_"], sequence)
    assert yt8m.pool(tmp_path) == ["nXSc", "a0Bz", "Zz-_"]


def test_a_damaged_tfrecord_is_an_error_naming_the_file_and_record(tmp_path):
    write_tfrecord(tmp_path / "a.tfrecord", ["nXSc", "a0Bz", "Q9q9"])
    data = (tmp_path / "a.tfrecord").read_bytes()
    (tmp_path / "cut.tfrecord").write_bytes(data[:-10])
    with pytest.raises(ValueError, match=r"cut.tfrecord: record 2 \(byte \d+\): truncated"):
        yt8m.tfrecord_ids(tmp_path / "cut.tfrecord")
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x40
    (tmp_path / "flip.tfrecord").write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match=r"flip.tfrecord: record 1 .*checksum"):
        yt8m.tfrecord_ids(tmp_path / "flip.tfrecord")
    (tmp_path / "text.tfrecord").write_text("nXSc\na0Bz\nthis is not a TFRecord file\n")
    with pytest.raises(ValueError, match=r"text.tfrecord: record 0 \(byte 0\): bad length checksum \(not a TFRecord"):
        yt8m.tfrecord_ids(tmp_path / "text.tfrecord")
    writer = TFRecordWriter(str(tmp_path / "other.tfrecord"))
    writer.write({"video_id": (b"nXSc", "byte")})
    writer.close()
    with pytest.raises(ValueError, match="other.tfrecord: record 0: not a YouTube-8M example .no feature 'id'"):
        yt8m.tfrecord_ids(tmp_path / "other.tfrecord")


def test_text_ids_with_junk_lines_name_the_line_and_duplicates_name_both_files(tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("# YT8M pseudo ids\nnXSc\n\n  a0Bz  \n")
    assert yt8m.pool(ids) == ["nXSc", "a0Bz"]
    ids.write_text("nXSc\nhttps://www.youtube.com/watch?v=0sf943sWZls\n")
    with pytest.raises(ValueError, match=r"ids.txt:2: 'https://.*' is not a 4-character YouTube-8M pseudo id"):
        yt8m.pool(ids)
    write_tfrecord(tmp_path / "a.tfrecord", ["nXSc"])
    write_tfrecord(tmp_path / "b.tfrecord", ["nXSc"])
    with pytest.raises(ValueError, match=r"'nXSc' is listed twice \(.*a.tfrecord, .*b.tfrecord\)"):
        yt8m.pool(tmp_path)


def test_the_official_lookup_form():
    """The schema's default ``lookup_url`` (its only copy: every look-up takes the config's) is
    YouTube-8M's form."""
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    template = schema["properties"]["datasets"]["additionalProperties"]["properties"]["lookup_url"]["default"]
    assert yt8m.lookup_url(template, "nXSc") == "http://data.yt8m.org/2/j/i/nX/nXSc.js"
    assert yt8m.parse_answer('i("nXSc","0sf943sWZls");', "nXSc") == "0sf943sWZls"
    with pytest.raises(ValueError, match="answer is for 'nXSd'"):
        yt8m.parse_answer('i("nXSd","0sf943sWZls");', "nXSc")
    with pytest.raises(ValueError, match="unexpected answer"):
        yt8m.parse_answer("<html>Sign in to the network</html>", "nXSc")


class Server:
    """A loopback HTTP server answering each path with its queue of (status, body: text or
    bytes), the last answer repeating, 404 for other paths; counts requests per path. A status
    of None sends the body as the whole raw response (malformed HTTP); a path in ``drip`` gets
    its response one byte every ``drip[path]`` seconds."""

    def __init__(self, answers: dict[str, list[tuple[int | None, str | bytes]]]):
        self.answers, self.requests, self.drip = answers, Counter(), {}
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                owner.requests[self.path] += 1
                queue = owner.answers.get(self.path, [(404, "")])
                status, body = queue.pop(0) if len(queue) > 1 else queue[0]
                data = body.encode() if isinstance(body, str) else body
                if status is not None:
                    data = f"HTTP/1.0 {status} -\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data
                pause = owner.drip.get(self.path, 0)
                try:
                    for piece in [data[i : i + 1] for i in range(len(data))] if pause else [data]:
                        self.wfile.write(piece)
                        self.wfile.flush()
                        time.sleep(pause)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a deadline)
                    pass

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.template = f"http://127.0.0.1:{self.httpd.server_port}/{{prefix}}/{{id}}.js"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    found = {
        f"/{p[:2]}/{p}.js": [(200, f'i("{p}","{y}");')] for p, y in [("nXSc", "0sf943sWZls"), ("a0Bz", "dQw4w9WgXcQ")]
    }
    running = Server(
        {
            **found,
            "/Q9/Q9q9.js": [(429, ""), (503, ""), (200, 'i("Q9q9","abcdefghijk");')],
            "/Mm/Mm00.js": [(200, "<html>captive portal</html>")],
            "/Gg/Gg00.js": [(410, "")],
        }
    )
    yield running
    running.close()


def _lookup_shard(ids, cache, template, **kwargs):
    settings = dict(rate=0, timeout=5, deadline=5, retries=0, backoff=0, sleep=lambda s: None) | kwargs
    return yt8m.lookup_shard(list(enumerate(ids)), cache, template=template, **settings)


def test_lookup_found_gone_rate_limited_and_malformed(server, tmp_path):
    cache = yt8m.Cache(tmp_path / "cache")
    waits = []
    ids = ["nXSc", "Gg00", "Q9q9", "Mm00", "Xx00"]
    rows = _lookup_shard(ids, cache, server.template, retries=2, backoff=0.5, sleep=waits.append)
    assert [(r["rank"], r["status"], r["youtube_id"]) for r in rows] == [
        (0, "ok", "0sf943sWZls"),
        (1, "gone", None),
        (2, "ok", "abcdefghijk"),
        (3, "lookup_failed", None),
        (4, "gone", None),
    ]
    assert "HTTP 410" in rows[1]["reason"] and "unexpected answer" in rows[3]["reason"]
    assert server.requests["/Q9/Q9q9.js"] == 3 and waits == [0.5, 1.0]  # 429, 503, then the answer; backing off
    # a rerun asks only for what is not final: the malformed answer, nothing else
    again = _lookup_shard(ids, cache, server.template, retries=2, sleep=waits.append)
    assert again == rows
    assert sum(server.requests.values()) == 7 + 1 and server.requests["/Mm/Mm00.js"] == 2


def test_a_rate_limit_that_lasts_fails_the_job_and_keeps_the_answers(server, tmp_path):
    server.answers["/Q9/Q9q9.js"] = [(429, "")]
    cache = yt8m.Cache(tmp_path / "cache")
    ids = ["nXSc", "Q9q9", "a0Bz"]
    with pytest.raises(yt8m.Transient, match=r"Q9q9.js: HTTP 429 \(after 3 attempts\)"):
        _lookup_shard(ids, cache, server.template, retries=2)
    assert cache.get("nXSc")["youtube_id"] == "0sf943sWZls" and cache.get("Q9q9") is None
    server.answers["/Q9/Q9q9.js"] = [(200, 'i("Q9q9","abcdefghijk");')]
    rows = _lookup_shard(ids, cache, server.template, retries=2)
    assert [r["status"] for r in rows] == ["ok"] * 3 and server.requests["/nX/nXSc.js"] == 1  # not asked again


def test_requests_are_spaced_by_the_rate(server, tmp_path):
    waits = []
    _lookup_shard(["nXSc", "a0Bz"], yt8m.Cache(tmp_path), server.template, rate=2, sleep=waits.append)
    assert len(waits) == 1 and 0 < waits[0] <= 0.5


ANSWER = 'i("nXSc","0sf943sWZls");'


def test_a_server_dripping_a_byte_at_a_time_is_cut_at_the_deadline(tmp_path):
    """Each byte comes well within the socket timeout (3 s); the whole answer would take 15 s.
    The request ends at its deadline (1 s), as a network error: retried, then the job fails."""
    raw = f"HTTP/1.0 200 OK\r\nContent-Length: {len(ANSWER)}\r\n\r\n{ANSWER}"
    server = Server({"/nX/nXSc.js": [(None, raw)]})
    server.drip["/nX/nXSc.js"] = 15 / len(raw)
    start = time.monotonic()
    try:
        with pytest.raises(yt8m.Transient, match=r"nXSc: .*/nX/nXSc.js: no whole answer within 1 s .*after 2 attempts"):
            _lookup_shard(["nXSc"], yt8m.Cache(tmp_path), server.template, timeout=3, deadline=1, retries=1)
    finally:
        server.close()
    assert time.monotonic() - start < 4 and server.requests["/nX/nXSc.js"] == 2


@pytest.mark.parametrize(
    "raw, error",
    [
        (b"HTTP/1.1 2OO OK\r\n\r\n", "BadStatusLine"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "IncompleteRead"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1a\r\ni(", "IncompleteRead"),
        (b"HTTP/1.1 200 OK\r\n" + b"X-Pad: 1\r\n" * 200 + b"\r\n", "HTTPException: got more than 100 headers"),
        (b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * 70000 + b"\r\n\r\n", "LineTooLong"),
    ],
)
def test_malformed_http_is_a_transient_failure_naming_the_id_and_url(raw, error):
    server = Server({"/nX/nXSc.js": [(None, raw)]})
    try:
        with pytest.raises(yt8m.Transient, match=rf"pseudo id nXSc: http://127.0.0.1:\d+/nX/nXSc.js: {error}"):
            yt8m.lookup("nXSc", server.template, timeout=5, retries=1, backoff=0, sleep=lambda s: None)
    finally:
        server.close()
    assert server.requests["/nX/nXSc.js"] == 2  # retried like any network error


def test_a_captive_portal_fails_the_job_and_the_rerun_after_it_asks_again(tmp_path):
    """Every answer HTML: not a property of the ids. A shard of four stops at the third in a row,
    a shard of one fails too; nothing is cached, and once the network is back the rerun asks
    again and gets the answers."""
    ids = ["nXSc", "a0Bz", "Q9q9", "Mm00"]
    server = Server({f"/{p[:2]}/{p}.js": [(200, "<html>Sign in to the network</html>")] for p in ids})
    cache = yt8m.Cache(tmp_path)
    try:
        with pytest.raises(yt8m.Transient, match=r"3 of this shard's 4 look-ups got a malformed answer \(3 in a row"):
            _lookup_shard(ids, cache, server.template)
        assert sum(server.requests.values()) == 3
        with pytest.raises(yt8m.Transient, match=r"1 of this shard's 1 look-ups .*more than 50%.*nXSc: .*<html>"):
            _lookup_shard(ids[:1], cache, server.template)
        assert not list(tmp_path.rglob("*.json"))
        server.answers = {f"/{p[:2]}/{p}.js": [(200, f'i("{p}","{p}abcdefg");')] for p in ids}
        rows = _lookup_shard(ids, cache, server.template)
    finally:
        server.close()
    assert [r["youtube_id"] for r in rows] == [f"{p}abcdefg" for p in ids]


@pytest.mark.parametrize(
    "cached",
    [
        "null",
        '{"pseudo_id": "nXSc", "youtube_id": "../../../etc/x", "status": "ok", "reason": ""}',
        '{"pseudo_id": "nXSc", "youtube_id": null, "status": "ok", "reason": ""}',
        '{"pseudo_id": "nXSc", "youtube_id": null, "status": "lookup_failed", "reason": "x"}',
        '{"pseudo_id": "a0Bz", "youtube_id": "dQw4w9WgXcQ", "status": "ok", "reason": ""}',
        "{not json",
    ],
)
def test_an_invalid_cached_answer_is_discarded_and_looked_up_again(server, tmp_path, caplog, cached):
    cache = yt8m.Cache(tmp_path)
    (tmp_path / "nX").mkdir()
    (tmp_path / "nX/nXSc.json").write_text(cached)
    (row,) = _lookup_shard(["nXSc"], cache, server.template)
    assert (row["status"], row["youtube_id"]) == ("ok", "0sf943sWZls") and server.requests["/nX/nXSc.js"] == 1
    assert "nXSc.json" in caplog.text and "discarded" in caplog.text
    assert cache.get("nXSc") == {"pseudo_id": "nXSc", "youtube_id": "0sf943sWZls", "status": "ok", "reason": ""}


def test_the_seeded_sample_and_its_reserve():
    pool = [f"{i:04d}" for i in range(1000)]
    assert sources.drawn(100, 0.1) == 110 and sources.drawn(100, 25) == 125 and sources.drawn(3, 0.1) == 4
    first = yt8m.sample_order(pool, seed=0, count=110)
    assert first == yt8m.sample_order(pool, seed=0, count=110) and len(set(first)) == 110
    assert first[:100] == yt8m.sample_order(pool, seed=0, count=100)  # the reserve comes after the sample
    assert first != yt8m.sample_order(pool, seed=1, count=110)
    assert sorted(yt8m.sample_order(pool[:50], seed=0, count=110)) == sorted(pool[:50])  # the pool runs out


def test_select_uses_the_first_ok_videos_and_reports_every_status():
    lookups = [
        {"rank": r, "pseudo_id": p, "youtube_id": y, "status": s, "reason": why}
        for r, p, y, s, why in [
            (0, "aaaa", "AAAAAAAAAAA", "ok", ""),
            (1, "bbbb", None, "gone", "HTTP 404"),
            (2, "cccc", "CCCCCCCCCCC", "ok", ""),
            (3, "dddd", "DDDDDDDDDDD", "ok", ""),
            (4, "eeee", "EEEEEEEEEEE", "ok", ""),
        ]
    ]
    tables = [
        {"video": "AAAAAAAAAAA", "status": "ok", "reason": None},
        {"video": "bbbb", "status": "gone", "reason": "HTTP 404"},
        {"video": "CCCCCCCCCCC", "status": "unavailable", "reason": "Video unavailable. This video is private"},
        {"video": "DDDDDDDDDDD", "status": "ok", "reason": None},
        {"video": "EEEEEEEEEEE", "status": "ok", "reason": None},
    ]
    used, report = yt8m.select(lookups, tables, sample=2)
    assert [u["video"] for u in used] == ["AAAAAAAAAAA", "DDDDDDDDDDD"]  # rank order, skipping the dead
    assert report["statuses"] == {
        "gone": {"count": 1, "examples": ["HTTP 404"]},
        "ok": {"count": 3, "examples": []},
        "unavailable": {"count": 1, "examples": ["Video unavailable. This video is private"]},
    }
    used, report = yt8m.select(lookups, tables, sample=4)  # the pool ran out: fewer, and said so
    assert len(used) == 3 and (report["used"], report["short_by"]) == (3, 1)
    assert "1 short of the sample" in availability.to_html(report)


@pytest.mark.slow
def test_a_yt8m_dataset_from_pseudo_ids_to_flow_through_the_workflow(tmp_path):
    """sample 3 + reserve 3 of a pool of 8 pseudo ids, against a loopback server that is both
    YouTube-8M's look-up and the video host: one id is gone, one video is unavailable, and
    training uses the first three ok videos in the seeded order."""
    import json
    import subprocess

    from picotest import run_snakemake, scheduled

    pool = ["nXSc", "a0Bz", "Q9q9", "Mm00", "Gg00", "Kk11", "Zz22", "Yy33"]
    order = yt8m.sample_order(pool, seed=0, count=6)
    youtube = {p: f"v{p}abcdef" for p in pool}  # 11 characters, like YouTube's
    video = tmp_path / "v.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-nostdin",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=160x120:rate=30:duration=2",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            str(video),
        ],
        check=True,
    )
    answers = {f"/{p[:2]}/{p}.js": [(200, f'i("{p}","{youtube[p]}");')] for p in pool}
    answers[f"/{order[1][:2]}/{order[1]}.js"] = [(404, "")]  # rank 1: gone from YouTube-8M's look-up
    answers |= {
        f"/media/{youtube[p]}.mp4": [(200, video.read_bytes())] for r, p in enumerate(order) if r != 3
    }  # rank 3: no video
    server = Server(answers)
    (tmp_path / "ids.txt").write_text("\n".join(pool) + "\n")
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config["datasets"] = {
        "yt": {
            "source": "yt8m",
            "ids": str(tmp_path / "ids.txt"),
            "lookup_url": server.template,
            "url_template": f"http://127.0.0.1:{server.httpd.server_port}/media/{{id}}.mp4",
            "sample": 3,
            "reserve": 3,
            "videos_per_shard": 3,
            "snippet_seconds": 1,
        }
    }
    config["download"] = {"retries": 0, "retry_backoff_seconds": 0}
    config["ablations"] = {}  # the demo's figures are of its own dataset
    work = tmp_path / "run"
    try:
        assert (
            scheduled(run_snakemake(work, "results/yt/availability.json", "-n", config=config).stdout)["yt8m_lookup"]
            == 2
        )
        run_snakemake(work, "results/yt/availability.json", config=config)
    finally:
        server.close()
    report = json.loads((work / "results/yt/availability.json").read_text())
    assert (report["drawn"], report["ok"], report["used"], report["short_by"]) == (6, 4, 3, 0)
    assert report["statuses"]["gone"]["count"] == 1 and report["statuses"]["unavailable"]["count"] == 1
    assert sorted(yt8m.read_selection(work / "results/yt/selection.parquet")) == sorted(
        youtube[order[r]] for r in (0, 2, 4)
    )
    assert server.requests[f"/media/{youtube[order[5]]}.mp4"] >= 1  # the reserve is fetched: it may be needed
