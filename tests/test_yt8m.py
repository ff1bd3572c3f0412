"""YT8M-S inputs (pico.data.yt8m): pseudo ids from TFRecord files (written by an independent
writer, the ``tfrecord`` package) and text files, and the look-up against a loopback server."""

from __future__ import annotations

import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from tfrecord import TFRecordWriter

from pico.data import sources, yt8m


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
    assert yt8m.lookup_url(yt8m.LOOKUP_URL, "nXSc") == "http://data.yt8m.org/2/j/i/nX/nXSc.js"
    assert yt8m.parse_answer('i("nXSc","0sf943sWZls");', "nXSc") == "0sf943sWZls"
    with pytest.raises(ValueError, match="answer is for 'nXSd'"):
        yt8m.parse_answer('i("nXSd","0sf943sWZls");', "nXSc")
    with pytest.raises(ValueError, match="unexpected answer"):
        yt8m.parse_answer("<html>Sign in to the network</html>", "nXSc")


class Server:
    """A loopback HTTP server answering each path with its queue of (status, body: text or
    bytes), the last answer repeating, 404 for other paths; counts requests per path."""

    def __init__(self, answers: dict[str, list[tuple[int, str | bytes]]]):
        self.answers, self.requests = answers, Counter()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                owner.requests[self.path] += 1
                queue = owner.answers.get(self.path, [(404, "")])
                status, body = queue.pop(0) if len(queue) > 1 else queue[0]
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode() if isinstance(body, str) else body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.template = f"http://127.0.0.1:{self.httpd.server_port}/{{prefix}}/{{id}}.js"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

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


def test_lookup_found_gone_rate_limited_and_malformed(server, tmp_path):
    cache = yt8m.Cache(tmp_path / "cache")
    waits = []
    ranked = list(enumerate(["nXSc", "Gg00", "Q9q9", "Mm00", "Xx00"]))
    rows = yt8m.lookup_shard(
        ranked, cache, template=server.template, rate=0, timeout=5, retries=2, backoff=0.5, sleep=waits.append
    )
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
    again = yt8m.lookup_shard(
        ranked, cache, template=server.template, rate=0, timeout=5, retries=2, backoff=0, sleep=waits.append
    )
    assert again == rows
    assert sum(server.requests.values()) == 7 + 1 and server.requests["/Mm/Mm00.js"] == 2


def test_a_rate_limit_that_lasts_fails_the_job_and_keeps_the_answers(server, tmp_path):
    server.answers["/Q9/Q9q9.js"] = [(429, "")]
    cache = yt8m.Cache(tmp_path / "cache")
    ranked = list(enumerate(["nXSc", "Q9q9", "a0Bz"]))
    with pytest.raises(yt8m.Transient, match=r"Q9q9.js: HTTP 429 \(after 3 attempts\)"):
        yt8m.lookup_shard(
            ranked, cache, template=server.template, rate=0, timeout=5, retries=2, backoff=0, sleep=lambda s: None
        )
    assert cache.get("nXSc")["youtube_id"] == "0sf943sWZls" and cache.get("Q9q9") is None
    server.answers["/Q9/Q9q9.js"] = [(200, 'i("Q9q9","abcdefghijk");')]
    rows = yt8m.lookup_shard(
        ranked, cache, template=server.template, rate=0, timeout=5, retries=2, backoff=0, sleep=lambda s: None
    )
    assert [r["status"] for r in rows] == ["ok"] * 3 and server.requests["/nX/nXSc.js"] == 1  # not asked again


def test_requests_are_spaced_by_the_rate(server, tmp_path):
    waits = []
    yt8m.lookup_shard(
        list(enumerate(["nXSc", "a0Bz"])),
        yt8m.Cache(tmp_path),
        template=server.template,
        rate=2,
        timeout=5,
        retries=0,
        backoff=0,
        sleep=waits.append,
    )
    assert len(waits) == 1 and 0 < waits[0] <= 0.5


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
    assert "1 short of the sample" in yt8m.availability_page(report)


@pytest.mark.slow
def test_a_yt8m_dataset_from_pseudo_ids_to_flow_through_the_workflow(tmp_path):
    """sample 3 + reserve 3 of a pool of 8 pseudo ids, against a loopback server that is both
    YouTube-8M's look-up and the video host: one id is gone, one video is unavailable, and
    training uses the first three ok videos in the seeded order."""
    import json
    import subprocess

    import yaml

    from picotest import REPO, run_snakemake, scheduled

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
