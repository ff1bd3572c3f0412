"""YT8M-S's inputs (Section 3.1, A.1) from what YouTube-8M distributes: its pseudo ids, read
from the video-level TFRecord files or a text file, and their look-up to YouTube ids.

TFRecord (TensorFlow's record format): each record is
``uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)``, little
endian, with masked_crc(x) = ((crc32c(x) >> 15) | (crc32c(x) << 17)) + 0xa282ead8 (mod 2^32).
A video-level record's data is a ``tf.train.Example`` whose feature ``id`` is a bytes list of
one 4-character pseudo id (frame-level files hold ``tf.train.SequenceExample`` records with
the same ``id`` in their context). Both are read here with a minimal protobuf decoder: the
only fields used are Example.features = 1 / SequenceExample.context = 1, Features.feature = 1
(a map entry: key = 1, value = 2), Feature.bytes_list = 1, BytesList.value = 1.

Look-up: YouTube-8M's site maps a pseudo id to its YouTube id with one small JavaScript file per
id, ``http://data.yt8m.org/2/j/i/{prefix}/{id}.js`` where prefix is the id's first two
characters, holding ``i("<pseudo id>","<YouTube id>");``.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import socket
import struct
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import google_crc32c
import pyarrow as pa

from pico import logs, seeding
from pico.store.files import atomic_path, read_parquet, write_parquet

log = logging.getLogger(__name__)

LOOKUP_URL = "http://data.yt8m.org/2/j/i/{prefix}/{id}.js"
PSEUDO_ID = re.compile(r"^[A-Za-z0-9_-]{4}$")
YOUTUBE_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")
TFRECORD_SUFFIXES = (".tfrecord", ".tfrecords")
_ANSWER = re.compile(r'^\s*i\(\s*"(?P<pseudo>[^"]*)"\s*,\s*"(?P<youtube>[A-Za-z0-9_-]{11})"\s*\)\s*;?\s*$')


def masked_crc(data: bytes) -> int:
    """TFRecord's checksum: CRC-32C rotated right by 15 bits plus 0xa282ead8 (mod 2^32)."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def records(path: str | Path) -> Iterator[bytes]:
    """The records of a TFRecord file, each checked against its two checksums; a truncated or
    damaged file, or one that is not a TFRecord, is a ValueError naming it and the record."""
    with open(path, "rb") as f:
        index = 0
        while header := f.read(12):
            where = f"{path}: record {index} (byte {f.tell() - len(header)})"
            if len(header) < 12:
                raise ValueError(f"{where}: truncated header ({len(header)} of 12 bytes)")
            length, length_crc = struct.unpack("<QI", header)
            if masked_crc(header[:8]) != length_crc:
                raise ValueError(f"{where}: bad length checksum (not a TFRecord file, or damaged)")
            data, footer = f.read(length), f.read(4)
            if len(data) < length or len(footer) < 4:
                raise ValueError(f"{where}: truncated ({len(data)} of {length} bytes)")
            if masked_crc(data) != struct.unpack("<I", footer)[0]:
                raise ValueError(f"{where}: bad data checksum (damaged)")
            yield data
            index += 1


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not byte & 0x80:
            return value, pos


def _fields(buf: bytes) -> Iterator[tuple[int, int, bytes | int]]:
    """(field number, wire type, value) of a protobuf message: bytes for length-delimited
    fields, ints for varints; fixed-width fields are skipped over as bytes."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise ValueError("truncated field")
            value, pos = buf[pos : pos + size], pos + size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, pos = buf[pos : pos + size], pos + size
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield number, wire, value


def _first(buf: bytes, number: int) -> bytes | None:
    return next((v for n, w, v in _fields(buf) if n == number and w == 2), None)


def example_id(record: bytes, feature: str = "id") -> str:
    """The ``feature`` bytes value of a ``tf.train.Example`` (or a SequenceExample's context)."""
    features = _first(record, 1)  # Example.features, or SequenceExample.context
    for n, w, entry in _fields(features or b""):
        if n == 1 and w == 2 and _first(entry, 1) == feature.encode():
            values = _first(_first(entry, 2) or b"", 1)  # Feature.bytes_list
            if values is None:
                raise ValueError(f"feature {feature!r} is not a bytes list")
            return (_first(values, 1) or b"").decode()
    raise ValueError(f"no feature {feature!r}")


def tfrecord_ids(path: str | Path) -> list[str]:
    """The pseudo ids of a YouTube-8M TFRecord file, in record order."""
    found = []
    for index, record in enumerate(records(path)):
        try:
            pseudo = example_id(record)
        except (ValueError, UnicodeDecodeError) as e:
            raise ValueError(f"{path}: record {index}: not a YouTube-8M example ({e})") from None
        if not PSEUDO_ID.match(pseudo):
            raise ValueError(f"{path}: record {index}: id {pseudo!r} is not a 4-character pseudo id")
        found.append(pseudo)
    return found


def text_ids(path: str | Path) -> list[str]:
    """Pseudo ids, one per line (blank lines and # comments skipped); any other line is an
    error naming the file and line."""
    found = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not PSEUDO_ID.match(line):
            raise ValueError(f"{path}:{number}: {line[:40]!r} is not a 4-character YouTube-8M pseudo id")
        found.append(line)
    return found


def pool(ids: str | Path) -> list[str]:
    """The pool of pseudo ids of ``ids``: a text file, or a folder of TFRecord files (every
    ``*.tfrecord`` under it, in name order). A pseudo id listed twice is an error naming both."""
    path = Path(ids)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in TFRECORD_SUFFIXES)
        if not files:
            raise ValueError(f"{path}: no TFRecord files (*{', *'.join(TFRECORD_SUFFIXES)})")
        sources = [(f, tfrecord_ids(f)) for f in files]
    else:
        sources = [(path, text_ids(path))]
    seen: dict[str, Path] = {}
    for source, found in sources:
        for pseudo in found:
            if pseudo in seen:
                raise ValueError(f"pseudo id {pseudo!r} is listed twice ({seen[pseudo]}, {source})")
            seen[pseudo] = source
    return list(seen)


def lookup_url(template: str, pseudo: str) -> str:
    return template.format(prefix=pseudo[:2], id=pseudo)


def parse_answer(text: str, pseudo: str) -> str:
    """The YouTube id in a look-up file's ``i("<pseudo id>","<YouTube id>");``; a ValueError
    when the file has another form or names another pseudo id."""
    m = _ANSWER.match(text)
    if not m:
        raise ValueError(f"unexpected answer {text[:80]!r}")
    if m["pseudo"] != pseudo:
        raise ValueError(f"answer is for {m['pseudo']!r}, not {pseudo!r}")
    return m["youtube"]


class Transient(RuntimeError):
    """A look-up that may succeed later (rate limit, server error, network): the job fails for a
    retry, keeping what it has cached."""


#: Look-up outcomes that are properties of the id, cached on disk and never asked again.
FINAL = ("ok", "gone")


class _Deadline:
    """Ends a request ``seconds`` after it starts, whatever it is waiting for: a timer shuts down
    every socket the request opened (through ``opener()``), so a read blocked on a server that
    drips a byte at a time, each within the socket timeout, returns at once. ``expired`` says
    whether it fired. A socket is kept as a duplicate of its descriptor (shutting that down ends
    the shared connection), because wrapping it in TLS detaches the original object."""

    def __init__(self, seconds: float):
        self.seconds, self.expired = seconds, False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()
        for sock in self._sockets:
            sock.close()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shutdown(sock)

    def connect(self, *args, **kwargs) -> socket.socket:
        """``socket.create_connection``, the socket registered to be shut down at the deadline."""
        sock = socket.create_connection(*args, **kwargs)
        with self._lock:
            self._sockets.append(sock.dup())
            if self.expired:
                _shutdown(sock)
        return sock

    def opener(self) -> urllib.request.OpenerDirector:
        """urllib's opener (proxies from the environment, redirects) with this deadline."""
        return urllib.request.build_opener(_DeadlineHandler(self))


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # already closed by the other end
        pass


class _DeadlineHandler(urllib.request.HTTPHandler, urllib.request.HTTPSHandler):
    """urllib's HTTP and HTTPS handlers whose connections open their sockets through a
    ``_Deadline`` (http.client opens them through the connection's ``_create_connection``)."""

    def __init__(self, deadline: _Deadline):
        super().__init__()
        self.deadline = deadline

    def _connection(self, cls: type[http.client.HTTPConnection]):
        def make(*args, **kwargs) -> http.client.HTTPConnection:
            connection = cls(*args, **kwargs)
            connection._create_connection = self.deadline.connect
            return connection

        return make

    def http_open(self, req):
        return self.do_open(self._connection(http.client.HTTPConnection), req)

    def https_open(self, req):
        return self.do_open(self._connection(http.client.HTTPSConnection), req, context=self._context)


def fetch_answer(url: str, timeout: float, deadline: float) -> tuple[int, str]:
    """(HTTP status, body) of a GET. ``timeout`` bounds each socket operation, ``deadline`` the
    whole request (a server dripping a byte at a time never trips the first). Network errors,
    malformed HTTP (a bad status line, a broken chunked body, too many or too long headers) and
    the deadline raise Transient naming the URL."""
    request = urllib.request.Request(url, headers={"User-Agent": "pico (YouTube-8M id lookup)"})
    error = None
    with _Deadline(deadline) as watch:
        try:
            answer = _get(watch.opener(), request, timeout)
        except (OSError, http.client.HTTPException, ValueError) as e:  # ValueError: a bad chunk size
            error = e
    if watch.expired:  # checked first: a close-delimited body cut at the deadline reads as whole
        raise Transient(f"{url}: no whole answer within {deadline:g} s (download.lookup_deadline_seconds)") from error
    if error is not None:
        raise Transient(f"{url}: {type(error).__name__}: {str(error).strip()}") from error
    return answer


def _get(opener: urllib.request.OpenerDirector, request: urllib.request.Request, timeout: float) -> tuple[int, str]:
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, response.read(4096).decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        e.close()
        return e.code, ""


def lookup(
    pseudo: str,
    template: str,
    *,
    timeout: float = 30,
    deadline: float = 60,
    retries: int = 3,
    backoff: float = 5.0,
    sleep=None,
    get=fetch_answer,
) -> dict:
    """One pseudo id's look-up: ``{"pseudo_id", "youtube_id", "status", "reason"}`` with status
    ok, gone (HTTP 404/410: YouTube-8M has no such id, or no longer maps it) or lookup_failed (an
    answer of another form: a captive portal, a changed site). Rate limits (HTTP 429), server
    errors (5xx), network errors, malformed HTTP and requests past ``deadline`` seconds are
    retried ``retries`` times, backing off ``backoff * 2^k`` seconds, then raise Transient
    naming the pseudo id and the URL."""
    import time

    sleep = time.sleep if sleep is None else sleep
    url = lookup_url(template, pseudo)

    def answer(youtube: str | None, status: str, reason: str) -> dict:
        return {"pseudo_id": pseudo, "youtube_id": youtube, "status": status, "reason": reason}

    for attempt in range(retries + 1):
        try:
            status, body = get(url, timeout, deadline)
        except Transient as e:
            status, problem = None, str(e)
        else:
            problem = f"{url}: HTTP {status}"
        if status == 200:
            try:
                return answer(parse_answer(body, pseudo), "ok", "")
            except ValueError as e:
                return answer(None, "lookup_failed", f"{url}: {e}")
        if status in (404, 410):
            return answer(None, "gone", problem)
        if status is not None and status != 429 and status < 500:
            return answer(None, "lookup_failed", problem)
        if attempt < retries:  # rate-limited, a server error or the network: wait and ask again
            sleep(backoff * 2.0**attempt)
    raise Transient(f"look-up of pseudo id {pseudo}: {problem} (after {retries + 1} attempts)")


def sample_order(pool_ids: list[str], seed: int, count: int) -> list[str]:
    """The first ``count`` pseudo ids of the pool in the run's seeded random order (all of
    them, if the pool is smaller): the paper's "random videos", the reserve after them."""
    order = seeding.rng(seed, "yt8m-sample").permutation(len(pool_ids))[:count]
    return [pool_ids[i] for i in order]


def answer_problem(answer, pseudo: str) -> str | None:
    """Why ``answer`` (a cached look-up) is not a final answer for ``pseudo`` as ``lookup`` gives
    one, or None: the cache is checked on every read like a fresh answer, so a damaged or
    edited file never reaches the download stage's URLs."""
    keys = {"pseudo_id", "youtube_id", "status", "reason"}
    if not isinstance(answer, dict) or set(answer) != keys:
        return f"not a look-up answer ({json.dumps(answer)[:80]})"
    if answer["pseudo_id"] != pseudo:
        return f"answer is for {answer['pseudo_id']!r}, not {pseudo!r}"
    if answer["status"] not in FINAL or not isinstance(answer["reason"], str):
        return f"status {answer['status']!r} with reason {answer['reason']!r} is not a final answer"
    youtube = answer["youtube_id"]
    if answer["status"] == "ok" and not (isinstance(youtube, str) and YOUTUBE_ID.match(youtube)):
        return f"youtube_id {youtube!r} is not an 11-character YouTube id"
    if answer["status"] == "gone" and youtube is not None:
        return f"a gone id with youtube_id {youtube!r}"
    return None


class Cache:
    """Final look-up answers (``FINAL``), one small JSON file per pseudo id under ``folder``
    (``{prefix}/{id}.json``, written atomically): a retried or rerun job asks only for the rest.
    It lives outside the jobs' declared outputs, so a failed job keeps it. A file that does not
    hold a valid final answer (``answer_problem``) is logged and looked up again."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def _path(self, pseudo: str) -> Path:
        return self.folder / pseudo[:2] / f"{pseudo}.json"

    def get(self, pseudo: str) -> dict | None:
        path = self._path(pseudo)
        try:
            answer = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except ValueError as e:  # not JSON, not UTF-8
            problem = f"not JSON ({e})"
        else:
            problem = answer_problem(answer, pseudo)
        if problem:
            log.warning("look-up cache %s: %s; discarded, %s is looked up again", path, problem, pseudo)
            return None
        return answer

    def put(self, answer: dict) -> None:
        if answer["status"] in FINAL:
            path = self._path(answer["pseudo_id"])
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                tmp.write_text(json.dumps(answer, sort_keys=True))


#: A look-up job fails (Transient) instead of recording its malformed answers (lookup_failed:
#: a 200 of another form, another 4xx) when MALFORMED_RUN of them come in a row, or when they
#: are more than MALFORMED_SHARE of the shard's ids (a shard of one or two ids included). That
#: is a captive portal, a proxy's error page or a changed site, not a property of the ids, and
#: a job that ended would never ask again: its output exists. A lone odd answer among good ones
#: is recorded (and asked again when the job reruns).
MALFORMED_RUN, MALFORMED_SHARE = 3, 0.5


def lookup_shard(
    ranked: list[tuple[int, str]],
    cache: Cache,
    *,
    template: str,
    rate: float,
    timeout: float,
    deadline: float,
    retries: int,
    backoff: float,
    sleep=None,
    get=fetch_answer,
) -> list[dict]:
    """Look up a shard's (rank, pseudo id) pairs: cached answers first, the others at most
    ``rate`` requests a second; one row per id with its rank. A Transient failure ends the job
    (the answers so far stay cached), and so do malformed answers past the bounds of
    ``MALFORMED_RUN`` and ``MALFORMED_SHARE``."""
    import time

    sleep = time.sleep if sleep is None else sleep
    rows, last, malformed, run = [], None, [], 0
    for rank, pseudo in logs.progress(ranked, len(ranked), "lookup", log):
        answer = cache.get(pseudo)
        if answer is None:
            if last is not None and rate > 0:
                sleep(max(0.0, 1 / rate - (time.monotonic() - last)))
            last = time.monotonic()
            answer = lookup(
                pseudo,
                template,
                timeout=timeout,
                deadline=deadline,
                retries=retries,
                backoff=backoff,
                sleep=sleep,
                get=get,
            )
            cache.put(answer)
            run = run + 1 if answer["status"] == "lookup_failed" else 0
            if run:
                malformed.append(answer)
            if run >= MALFORMED_RUN:
                raise _malformed(malformed, len(ranked), f"{run} in a row")
        rows.append({"rank": rank, **answer})
    if len(malformed) > MALFORMED_SHARE * len(ranked):
        raise _malformed(malformed, len(ranked), f"more than {MALFORMED_SHARE:.0%} of the shard")
    return rows


def _malformed(answers: list[dict], ids: int, how: str) -> Transient:
    first = answers[0]
    return Transient(
        f"{len(answers)} of this shard's {ids} look-ups got a malformed answer ({how}; first: "
        f"{first['pseudo_id']}: {first['reason']}): a captive portal, a proxy's error page or a changed "
        "site, not a property of the ids -- the job fails so that a rerun asks again (final answers stay cached)"
    )


SAMPLE_SCHEMA = pa.schema([("rank", pa.int64()), ("pseudo_id", pa.string())])
LOOKUP_SCHEMA = pa.schema(
    [
        ("rank", pa.int64()),
        ("pseudo_id", pa.string()),
        ("youtube_id", pa.string()),
        ("status", pa.string()),
        ("reason", pa.string()),
    ]
)


def write_sample(ids: str | Path, count: int, seed: int, out: str | Path) -> None:
    """The seeded sample of ``count`` pseudo ids (sample and reserve) from the pool ``ids``."""
    pool_ids = pool(ids)
    drawn_ids = sample_order(pool_ids, seed, count)
    log.info("sample: %d of a pool of %d pseudo ids (%s)", len(drawn_ids), len(pool_ids), ids)
    if len(drawn_ids) < count:
        log.warning("the pool has %d ids, fewer than the %d asked for (sample and reserve)", len(pool_ids), count)
    write_parquet(pa.table({"rank": range(len(drawn_ids)), "pseudo_id": drawn_ids}, schema=SAMPLE_SCHEMA), out)


def read_sample(path: str | Path, ranks: list[int]) -> list[tuple[int, str]]:
    """(rank, pseudo id) of ``ranks`` that the sample has (a small pool has fewer)."""
    wanted = set(ranks)
    table = read_parquet(path, SAMPLE_SCHEMA).to_pylist()
    return [(r["rank"], r["pseudo_id"]) for r in table if r["rank"] in wanted]


def write_lookup(rows: list[dict], out: str | Path) -> None:
    write_parquet(pa.Table.from_pylist(rows, schema=LOOKUP_SCHEMA), out)


def read_lookup(path: str | Path) -> list[dict]:
    return read_parquet(path, LOOKUP_SCHEMA).to_pylist()


def download_entries(lookup_rows: list[dict], url_template: str) -> tuple[list[dict], list[dict]]:
    """A shard's look-ups as the download stage's entries (ok: the YouTube video's watch URL)
    and its rows for the ids without a video (gone, lookup_failed: ``video`` is the pseudo id)."""
    entries, failed, seen = [], [], {}
    for row in sorted(lookup_rows, key=lambda r: r["rank"]):
        youtube = row["youtube_id"]
        if row["status"] == "ok" and youtube in seen:  # two pseudo ids, one video: keep the first
            row = {**row, "status": "lookup_failed", "reason": f"same YouTube id as {seen[youtube]}"}
        if row["status"] == "ok":
            seen[youtube] = row["pseudo_id"]
            entries.append({"video": youtube, "url": url_template.format(id=youtube)})
        else:
            failed.append(
                {"video": row["pseudo_id"], "source": "yt8m", "status": row["status"], "reason": row["reason"]}
            )
    return entries, failed


SELECTION_SCHEMA = pa.schema([("rank", pa.int64()), ("pseudo_id", pa.string()), ("video", pa.string())])


def select(lookup_rows: list[dict], manifest_rows: list[dict], sample: int) -> tuple[list[dict], dict]:
    """The videos training uses: the first ``sample`` by rank whose final status (look-up,
    download, shots, frames, flow) is ok, or all ok ones if fewer; and the availability report:
    how many were drawn, came out ok and are used, and every status's count with up to three
    of its reasons."""
    status = {r["video"]: (r["status"], r["reason"]) for r in manifest_rows}
    final = []
    for row in sorted(lookup_rows, key=lambda r: r["rank"]):
        video = row["youtube_id"] if row["status"] == "ok" else row["pseudo_id"]
        outcome, reason = status.get(video, (row["status"], row["reason"]))
        final.append((row["rank"], row["pseudo_id"], video, outcome, reason))
    ok = [f for f in final if f[3] == "ok"]
    used = [{"rank": r, "pseudo_id": p, "video": v} for r, p, v, _, _ in ok[:sample]]
    statuses: dict[str, dict] = {}
    for *_, outcome, reason in final:
        entry = statuses.setdefault(outcome, {"count": 0, "examples": []})
        entry["count"] += 1
        if reason and reason not in entry["examples"] and len(entry["examples"]) < 3:
            entry["examples"].append(reason)
    report = {
        "sample": sample,
        "drawn": len(final),
        "ok": len(ok),
        "used": len(used),
        "short_by": max(0, sample - len(used)),
        "statuses": dict(sorted(statuses.items())),
    }
    return used, report


def write_selection(rows: list[dict], out: str | Path) -> None:
    write_parquet(pa.Table.from_pylist(rows, schema=SELECTION_SCHEMA), out)


def read_selection(path: str | Path) -> set[str]:
    """The videos of a selection (``select``)."""
    return set(read_parquet(path, SELECTION_SCHEMA).column("video").to_pylist())


def availability_page(report: dict) -> str:
    """The availability report (``select``) as an HTML page for ``snakemake --report``."""
    from html import escape

    rows = "".join(
        f"<tr><td>{escape(s)}</td><td>{v['count']}</td><td>{'<br>'.join(map(escape, v['examples']))}</td></tr>"
        for s, v in report["statuses"].items()
    )
    head = (
        f"<p>{report['drawn']} drawn (sample {report['sample']} and its reserve), {report['ok']} ok, "
        f"{report['used']} used for training"
        + (f", {report['short_by']} short of the sample" if report["short_by"] else "")
        + ".</p>"
    )
    return (
        f"<html><body><h3>Availability: {escape(report.get('dataset', ''))}</h3>{head}"
        f"<table border=1><tr><th>status</th><th>videos</th><th>example reasons</th></tr>{rows}</table></body></html>\n"
    )
