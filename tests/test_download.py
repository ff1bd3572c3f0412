"""The download stage against a real HTTP server on 127.0.0.1 (no other network).

yt-dlp's generic extractor treats a URL answered with ``Content-Type: video/...`` as a direct
video link, so a small ``http.server`` is enough to exercise ``pico.data.download`` end to end:
whole files (youtube source), trimmed sections through ffmpeg (kinetics source), a 404, a
transfer cut short, and the Kinetics "local root" path that must never touch the network.
"""

from __future__ import annotations

import csv
import re
import socket
import subprocess
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest

from pico import config as pcfg
from pico.data import download, sources, video
from pico.store import manifest
from picotest import REPO

CFG = pcfg.validate(
    {
        "datasets": {"d": {"source": "synthetic"}},
        "download": {"retries": 1, "retry_backoff_seconds": 0, "socket_timeout": 5, "bot_backoff_seconds": 0},
    },
    REPO / "workflow/schemas/config.schema.yaml",
)["download"]

GOOD_SECONDS = 2.0  # the whole-file video
LONG_SECONDS = 8.0  # the Kinetics source video, trimmed by the downloads
KINETICS_ID = "kin_src_abc"  # 11 characters, like a YouTube id
DRIP_SECONDS = 0.5


def _make_video(path: Path, seconds: float) -> Path:
    """A small H.264 MP4 with a keyframe every 5 frames (so cuts land within 1/6 s)."""
    cmd = [
        "ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi",
        "-i", f"testsrc2=size=160x120:rate=30:duration={seconds}",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "5", str(path),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True)
    return path


class _Server:
    """What the test server serves, and a log of the requests it got."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}  # path -> body, served whole (Range honoured)
        self.truncated: set[str] = set()  # paths whose body is cut in half, then the socket closed
        self.errors: dict[str, int] = {}  # paths answered with this HTTP error status
        self.drip: set[str] = set()  # paths whose body comes one byte every DRIP_SECONDS
        self.requests: list[tuple[str, str]] = []  # (method, path), in arrival order
        self.lock = threading.Lock()
        self.port = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def hits(self, path: str) -> int:
        with self.lock:
            return sum(1 for _, p in self.requests if p == path)

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()


def _handler(state: _Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # one request per connection: "close" ends every body

        def log_message(self, *args) -> None:  # keep pytest's output clean
            pass

        def do_HEAD(self) -> None:
            self._serve(body=False)

        def do_GET(self) -> None:
            self._serve(body=True)

        def _serve(self, body: bool) -> None:
            with state.lock:
                state.requests.append((self.command, self.path))
            if self.path in state.errors:
                self.send_error(state.errors[self.path])
                return
            data = state.files.get(self.path)
            if data is None:
                self.send_error(404, "Not Found")
                return
            if self.path in state.drip:
                self._drip(data, body)
                return
            if self.path in state.truncated:
                # Announce the whole file, send half of it, hang up (Range is ignored: a 200).
                self.send_response(200)
                self.send_header("Content-Type", "video/mp4")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                self.close_connection = True
                return
            start, end = 0, len(data) - 1
            match = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", ""))
            if match and match.group(1):
                start = int(match.group(1))
                end = min(int(match.group(2)), end) if match.group(2) else end
            if start > end:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.end_headers()
                return
            self.send_response(206 if match and match.group(1) else 200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(end - start + 1))
            if match and match.group(1):
                self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
            self.end_headers()
            if body:
                try:
                    self.wfile.write(data[start : end + 1])
                except (BrokenPipeError, ConnectionResetError):  # ffmpeg may hang up mid-body
                    pass

        def _drip(self, data: bytes, body: bool) -> None:
            """The whole file announced, then a byte every DRIP_SECONDS: each read is well within
            the socket timeout, the whole would take days."""
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                for i in range(len(data) if body else 0):
                    self.wfile.write(data[i : i + 1])
                    self.wfile.flush()
                    time.sleep(DRIP_SECONDS)
            except (BrokenPipeError, ConnectionResetError):  # the client was killed at its deadline
                pass

    return Handler


@pytest.fixture(scope="module", autouse=True)
def offline():
    """No connection leaves 127.0.0.1 from this process, and no proxy is used (ffmpeg
    inherits the environment)."""
    real_connect = socket.socket.connect

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in ("127.0.0.1", "::1"):
            raise OSError(f"offline test: connection to {address!r} refused")
        return real_connect(self, address)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", connect)
        for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
            mp.delenv(name, raising=False)
        mp.setenv("no_proxy", "*")
        mp.setenv("NO_PROXY", "*")
        yield


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A ThreadingHTTPServer on 127.0.0.1, port chosen by the OS, serving three videos."""
    folder = tmp_path_factory.mktemp("served")
    state = _Server()
    good = _make_video(folder / "good.mp4", GOOD_SECONDS).read_bytes()
    state.files["/good.mp4"] = good
    state.files["/other.mp4"] = good
    state.files["/truncated.mp4"] = good
    state.truncated.add("/truncated.mp4")
    state.files[f"/{KINETICS_ID}.mp4"] = _make_video(folder / "long.mp4", LONG_SECONDS).read_bytes()
    state.files["/drip.mp4"] = good
    state.drip.add("/drip.mp4")
    state.files["/garbage.mp4"] = bytes(range(256)) * 64  # announced as video/mp4, not a video

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def srv(server):
    """The module's server with an empty request log."""
    server.reset()
    return server


# ---------------------------------------------------------------- youtube source (whole files)


@pytest.fixture(scope="module")
def youtube_rows(server, tmp_path_factory):
    """One shard of four URLs: good, missing (404), truncated, and another good one after them."""
    folder = tmp_path_factory.mktemp("youtube")
    ids = folder / "ids.txt"
    lines = ["# test shard", server.url("/good.mp4"), server.url("/missing.mp4"), "",
             server.url("/truncated.mp4"), server.url("/other.mp4")]  # fmt: skip
    ids.write_text("\n".join(lines) + "\n")
    entries = sources.youtube_entries(str(ids), "https://www.youtube.com/watch?v={id}")
    server.reset()
    rows = download.run_shard(entries, "youtube", folder / "media", CFG, seed=0)
    requests = Counter(path for _, path in server.requests)
    methods = Counter(server.requests)
    return {"entries": entries, "rows": rows, "requests": requests, "methods": methods, "media": folder / "media"}


def _row(youtube_rows: dict, name: str) -> dict:
    (row,) = [r for r in youtube_rows["rows"] if r["url"].endswith(f"/{name}")]
    return row


def test_youtube_entries_from_url_lines(youtube_rows, server):
    entries = youtube_rows["entries"]
    assert [e["url"] for e in entries] == [server.url(f"/{n}.mp4") for n in ("good", "missing", "truncated", "other")]
    assert len({e["video"] for e in entries}) == 4
    assert all(e["video"].startswith(n + "-") for e, n in zip(entries, ("good", "missing", "truncated", "other")))
    # one row per entry, in order, never an exception for the shard
    assert [r["video"] for r in youtube_rows["rows"]] == [e["video"] for e in entries]
    assert all(r["source"] == "youtube" for r in youtube_rows["rows"])


@pytest.mark.parametrize("name", ["good.mp4", "other.mp4"])
def test_youtube_good_video_downloads(youtube_rows, name):
    row = _row(youtube_rows, name)
    assert row["status"] == "ok", row.get("reason")
    path = Path(row["path"])
    assert path.is_file() and path.parent == youtube_rows["media"]
    assert path.name == sources.file_name(row["video"]) + ".mp4"
    info = video.probe(path)
    assert info.duration == pytest.approx(GOOD_SECONDS, abs=0.1)
    assert (info.width, info.height) == (160, 120)
    assert info.fps == pytest.approx(30, abs=0.01)


def test_youtube_404_is_unavailable(youtube_rows):
    row = _row(youtube_rows, "missing.mp4")
    assert row["status"] == "unavailable"
    assert "404" in row["reason"]
    assert not row.get("path")
    assert not row["reason"].startswith("ERROR")


def test_youtube_truncated_transfer_is_unavailable(youtube_rows):
    row = _row(youtube_rows, "truncated.mp4")
    assert row["status"] == "unavailable"
    assert not row.get("path")
    assert "expected" in row["reason"]  # yt-dlp: "<n> bytes read, <m> more expected"
    # no finished file under the video's name (a partial .part file is another matter)
    assert not (youtube_rows["media"] / (sources.file_name(row["video"]) + ".mp4")).exists()
    # the video after it in the shard still downloads
    assert _row(youtube_rows, "other.mp4")["status"] == "ok"


def test_youtube_request_counts(youtube_rows):
    requests = youtube_rows["requests"]
    retries = CFG["retries"]
    # A good direct link: one GET by the generic extractor (reads the headers only), one GET
    # by the HTTP downloader.
    assert requests["/good.mp4"] == 2
    assert requests["/other.mp4"] == 2
    # A 404 fails in the extractor; extractor_retries does not apply to the generic one.
    assert requests["/missing.mp4"] == 1
    # Truncated: the extractor's GET, then the downloader's first try and `retries` retries.
    # Each retry asks for `Range: bytes=<size of the .part file>-` even with continuedl=False;
    # this server ignores Range (200, no Content-Range), so yt-dlp starts over from byte 0.
    assert requests["/truncated.mp4"] == 1 + (retries + 1)
    assert set(youtube_rows["methods"]) <= {("GET", p) for p in requests}


def test_truncated_retries_follow_config(srv, tmp_path):
    """The bound on requests moves with cfg["retries"] (0 and 2 retries)."""
    for retries in (0, 2):
        srv.reset()
        entry = {"video": f"trunc{retries}", "url": srv.url("/truncated.mp4")}
        (row,) = download.run_shard([entry], "youtube", tmp_path, {**CFG, "retries": retries}, seed=0)
        assert row["status"] == "unavailable"
        assert srv.hits("/truncated.mp4") == 1 + (retries + 1)


# ---------------------------------------------------------------- kinetics source


def _kinetics_csv(path: Path, rows: list[tuple[str, str, int, int, str]]) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["label", "youtube_id", "time_start", "time_end", "split"])
        writer.writerows(rows)
    return path


def test_kinetics_downloads_the_trimmed_segment(srv, tmp_path):
    table = _kinetics_csv(tmp_path / "train.csv", [("abseiling", KINETICS_ID, 2, 5, "train")])
    entries = sources.kinetics_entries(str(table), srv.url("/{id}.mp4"))
    assert entries == [
        {
            "video": f"{KINETICS_ID}_000002_000005",
            "url": srv.url(f"/{KINETICS_ID}.mp4"),
            "start": 2.0,
            "end": 5.0,
            "label": "abseiling",
            "split": "train",
        }
    ]
    (row,) = download.run_shard(entries, "kinetics", tmp_path / "media", CFG, seed=0)
    assert row["status"] == "ok", row.get("reason")
    assert row["source"] == "kinetics"
    info = video.probe(row["path"])
    assert info.duration == pytest.approx(5 - 2, abs=0.2)  # a keyframe is 1/6 s apart
    assert info.duration < LONG_SECONDS - 1  # trimmed, not the whole 8 s source
    assert srv.hits(f"/{KINETICS_ID}.mp4") >= 2  # the extractor's GET, then ffmpeg's


def test_kinetics_segment_content_is_from_the_right_time(srv, tmp_path):
    """The cut starts at time_start: its first frame matches the source's frame at 2 s."""
    table = _kinetics_csv(tmp_path / "val.csv", [("abseiling", KINETICS_ID, 2, 5, "val")])
    entries = sources.kinetics_entries(str(table), srv.url("/{id}.mp4"))
    (row,) = download.run_shard(entries, "kinetics", tmp_path / "media", CFG, seed=0)
    assert row["status"] == "ok", row.get("reason")

    def frame(path: str | Path, at: float) -> bytes:
        cmd = ["ffmpeg", "-v", "error", "-nostdin", "-ss", str(at), "-i", str(path), "-frames:v", "1",
               "-f", "rawvideo", "-pix_fmt", "gray", "-"]  # fmt: skip
        return subprocess.run(cmd, check=True, capture_output=True).stdout

    source = tmp_path / "source.mp4"
    source.write_bytes(srv.files[f"/{KINETICS_ID}.mp4"])
    first = frame(row["path"], 0)
    diffs = {t: _mean_abs_diff(first, frame(source, t)) for t in (0.0, 2.0, 4.0)}
    assert diffs[2.0] < 8 and diffs[2.0] < diffs[0.0] and diffs[2.0] < diffs[4.0], diffs


def _mean_abs_diff(a: bytes, b: bytes) -> float:
    assert len(a) == len(b) == 160 * 120
    return sum(abs(x - y) for x, y in zip(a, b)) / len(a)


def test_kinetics_root_finds_clip_without_network(srv, tmp_path):
    root = tmp_path / "k400"
    clip = root / "air drumming" / "abcdefghijk_000010_000020.mp4"
    clip.parent.mkdir(parents=True)
    _make_video(clip, 1.0)
    table = _kinetics_csv(
        tmp_path / "test.csv",
        [("air drumming", "abcdefghijk", 10, 20, "test"), ("air drumming", "zzzzzzzzzzz", 30, 40, "test")],
    )
    entries = sources.kinetics_entries(str(table), srv.url("/{id}.mp4"))
    rows = download.run_shard(entries, "kinetics", tmp_path / "media", CFG, seed=0, root=str(root))
    found, absent = rows
    assert found["video"] == "abcdefghijk_000010_000020"
    assert found["status"] == "ok"
    assert Path(found["path"]) == clip
    assert absent["video"] == "zzzzzzzzzzz_000030_000040"
    assert absent["status"] == "unavailable"
    assert "not found" in absent["reason"]
    assert "zzzzzzzzzzz_000030_000040" in absent["reason"]
    assert srv.requests == []  # no download attempted for either
    assert not (tmp_path / "media").exists() or not any((tmp_path / "media").iterdir())


# ---------------------------------------------------------------- manifest round trip


def test_manifest_round_trip(youtube_rows, tmp_path):
    rows = youtube_rows["rows"]
    path = tmp_path / "videos" / "00000.parquet"
    path.parent.mkdir()
    manifest.write(rows, path)
    back = manifest.read(path)
    keys = ("video", "status", "reason", "source", "url", "path")
    assert [{k: r[k] for k in keys} for r in back] == [{k: r.get(k) for k in keys} for r in rows]
    assert [r["status"] for r in back] == ["ok", "unavailable", "unavailable", "ok"]
    assert back[0]["reason"] is None and "404" in back[1]["reason"]
    assert set(back[0]) == set(manifest.SCHEMA.names)


def test_offline_guard_refuses_other_hosts():
    with pytest.raises(OSError, match="offline test"):
        socket.create_connection(("192.0.2.1", 80), timeout=1)  # TEST-NET-1, never routed


def test_a_transient_failure_fails_the_shard_instead_of_losing_the_video(srv, tmp_path):
    """HTTP 503 (an overloaded server) says nothing about the video: the shard fails, so that
    Snakemake's retry fetches it later, and no row records it as unavailable for good."""
    srv.errors["/busy.mp4"] = 503
    entry = {"video": "busy", "url": srv.url("/busy.mp4")}
    with pytest.raises(RuntimeError, match="busy.*transient"):
        download.run_shard([entry], "youtube", tmp_path / "media", CFG, seed=0)
    assert not list((tmp_path / "media").glob("busy*"))


@pytest.mark.parametrize(
    "reason, expected",
    [
        ("Unable to download webpage: <urlopen error [Errno -3] Temporary failure in name resolution>", True),
        ("Unable to download webpage: The read operation timed out", True),
        ("Unable to download webpage: HTTP Error 429: Too Many Requests", True),
        ("Unable to download webpage: HTTP Error 502: Bad Gateway", True),
        ("Sign in to confirm you’re not a bot. Use --cookies-from-browser or --cookies for the authentication.", True),
        ("Sign in to confirm your age. This video may be inappropriate for some users.", False),
        ("The uploader has not made this video available in your country", False),
        ("Video unavailable. This video has been removed by the uploader", False),
        ("Private video. Sign in if you've been granted access to this video", False),
        ("Unable to download webpage: HTTP Error 404: Not Found", False),
    ],
)
def test_which_download_errors_are_transient(reason, expected):
    assert download.transient(reason) is expected


def test_ytdlp_options_carry_cookies_limits_sleeps_and_proxy(tmp_path):
    plain = download.ytdlp_options(tmp_path / "v", CFG)
    assert not {"cookiefile", "ratelimit", "proxy", "sleep_interval", "sleep_interval_requests", "extractor_args"} & (
        plain.keys()
    )
    cfg = {
        **CFG,
        "cookies": "/secrets/cookies.txt",
        "rate_limit": 2_000_000,
        "proxy": "socks5://127.0.0.1:1080",
        "sleep_seconds": 5,
        "sleep_requests": 0.75,
        "extractor_args": {"youtube": {"player_client": ["web_safari"], "po_token": ["web.gvs+TOKEN"]}},
    }
    options = download.ytdlp_options(tmp_path / "v", cfg)
    assert options["extractor_args"] == {"youtube": {"player_client": ["web_safari"], "po_token": ["web.gvs+TOKEN"]}}
    assert (options["cookiefile"], options["ratelimit"], options["proxy"]) == (
        "/secrets/cookies.txt",
        2_000_000,
        "socks5://127.0.0.1:1080",
    )
    assert (options["sleep_interval"], options["sleep_interval_requests"]) == (5, 0.75)


@pytest.mark.parametrize("parallel", [1, 2])
def test_a_rate_limited_shard_fails_then_resumes_without_fetching_again(srv, tmp_path, monkeypatch, parallel):
    """Four videos; the third answers 429 (rate-limited): the shard waits bot_backoff_seconds and
    fails, its finished downloads kept in the journal; once the server recovers the retry
    fetches only what it lacks, and the rows come out in the entries' order, with bytes and
    seconds per video."""
    waits = []
    # download's own clock (the backoff), not the time module (subprocess sleeps while it waits)
    monkeypatch.setattr(download, "time", SimpleNamespace(sleep=waits.append, perf_counter=time.perf_counter))
    names = ["good", "other", "limited", "fourth"]
    for name in names:
        srv.files[f"/{name}.mp4"] = srv.files["/good.mp4"]
    srv.errors["/limited.mp4"] = 429
    entries = [{"video": n, "url": srv.url(f"/{n}.mp4")} for n in names]
    cfg = {**CFG, "parallel": parallel, "bot_backoff_seconds": 7, "retries": 0}
    journal = tmp_path / "00000.parquet.partial"
    with pytest.raises(download.Transient, match="limited.*429"):
        download.run_shard(entries, "youtube", tmp_path / "media", cfg, seed=0, journal=journal)
    assert [w for w in waits if w] == [7]  # the backoff (yt-dlp may sleep 0 between its own tries)
    kept = download.Journal(journal).done()
    assert {"good", "other"} <= kept.keys() and "limited" not in kept
    before = {n: srv.hits(f"/{n}.mp4") for n in names}
    del srv.errors["/limited.mp4"]
    rows = download.run_shard(entries, "youtube", tmp_path / "media", cfg, seed=0, journal=journal)
    assert [r["video"] for r in rows] == names and {r["status"] for r in rows} == {"ok"}
    for name in kept:  # never fetched again
        assert srv.hits(f"/{name}.mp4") == before[name], name
    assert srv.hits("/limited.mp4") > before["limited"]
    size = len(srv.files["/good.mp4"])
    for row in rows:
        assert Path(row["path"]).parent == tmp_path / "media" and Path(row["path"]).stat().st_size == size
        assert row["download_bytes"] == size and row["download_seconds"] > 0
    table = tmp_path / "00000.parquet"
    manifest.write(rows, table)
    assert [r["download_bytes"] for r in manifest.read(table)] == [size] * 4


def test_a_download_past_its_deadline_is_killed_and_fails_the_shard(srv, tmp_path):
    """A server that drips a byte every 0.5 s keeps every read within the socket timeout (5 s):
    the download's deadline (2 s) kills it, leaves no partial file and fails the shard as a
    transient failure (a retry fetches the video), not as a property of the video."""
    entry = {"video": "drip", "url": srv.url("/drip.mp4")}
    start = time.monotonic()
    with pytest.raises(download.Transient, match=r"drip .*timed out: no whole download within 2 s .*deadline_seconds"):
        download.run_shard([entry], "youtube", tmp_path / "media", {**CFG, "deadline_seconds": 2}, seed=0)
    assert time.monotonic() - start < 6
    assert not list((tmp_path / "media").iterdir())


@pytest.mark.parametrize(
    "bound, reason",
    [
        ({"max_filesize": 1000}, r"^\d+ bytes > download.max_filesize 1000$"),
        ({"max_duration": 1.5}, r"^duration 2 s > download.max_duration 1.5 s$"),
    ],
)
def test_a_video_over_a_bound_is_unavailable_and_not_kept(srv, tmp_path, bound, reason):
    """Over max_filesize (announced by the server: stopped at its first bytes) or max_duration
    (unknown before the download here: checked on the file), the video is unavailable with the
    bound, and no file stays (the shard goes on)."""
    entry = {"video": "big", "url": srv.url("/good.mp4")}
    (row,) = download.run_shard([entry], "youtube", tmp_path / "media", {**CFG, **bound}, seed=0)
    assert row["status"] == "unavailable" and re.match(reason, row["reason"]) and not row.get("path")
    assert not list((tmp_path / "media").iterdir())


def test_the_bounds_use_what_the_site_says_before_downloading():
    """YouTube says a video's duration and its formats' sizes: yt-dlp's match filter skips a
    video over a bound before any media byte; a section's source (a Kinetics clip's video) may
    be long."""
    whole = download.Bounds({**CFG, "max_duration": 600, "max_filesize": 10**8}, whole=True)
    assert whole.match({"duration": 420, "filesize": 5 * 10**7}) is None
    assert whole.match({"duration": 3600}) == "duration 3600 s > download.max_duration 600 s"
    assert (
        whole.match({"duration": 420, "filesize_approx": 2 * 10**8})
        == "200000000 bytes > download.max_filesize 100000000"
    )
    assert download.Bounds({**CFG, "max_duration": 600}, whole=False).match({"duration": 3600}) is None


def test_a_downloaded_file_that_is_not_a_video_is_corrupt_and_removed(srv, tmp_path):
    entry = {"video": "garbage", "url": srv.url("/garbage.mp4")}
    (row,) = download.run_shard([entry], "youtube", tmp_path / "media", CFG, seed=0)
    assert row["status"] == "corrupt" and "ffprobe failed" in row["reason"] and not row.get("path")
    assert not list((tmp_path / "media").iterdir())


def test_a_journal_line_cut_by_a_kill_is_ignored(tmp_path):
    book = download.Journal(tmp_path / "j")
    book.record({"video": "a", "status": "unavailable", "reason": "Private video", "path": None})
    with open(tmp_path / "j/rows.jsonl", "a") as f:
        f.write('{"video": "b", "status": "o')  # killed mid-write
    assert list(book.done()) == ["a"]
