"""YT8M-S's inputs (Section 3.1, A.1) from what YouTube-8M distributes: its pseudo ids, read
from the video-level TFRecord files (``pico.data.tfrecord``) or a text file, and their look-up
to YouTube ids; the seeded sample of them, and the selection of the videos training uses.

Look-up: YouTube-8M's site maps a pseudo id to its YouTube id with one small JavaScript file per
id, ``http://data.yt8m.org/2/j/i/{prefix}/{id}.js`` where prefix is the id's first two
characters, holding ``i("<pseudo id>","<YouTube id>");``: the default of the config's
``datasets.<name>.lookup_url`` (workflow/schemas/config.schema.yaml), which every look-up uses.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import socket
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pyarrow as pa

from pico import logs, seeding
from pico.data import tfrecord
from pico.store.files import read_parquet, write_json, write_parquet

log = logging.getLogger(__name__)

PSEUDO_ID = re.compile(r"^[A-Za-z0-9_-]{4}$")
YOUTUBE_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")
_ANSWER = re.compile(r'^\s*i\(\s*"(?P<pseudo>[^"]*)"\s*,\s*"(?P<youtube>[A-Za-z0-9_-]{11})"\s*\)\s*;?\s*$')


def tfrecord_ids(path: str | Path) -> list[str]:
    """The pseudo ids of a YouTube-8M TFRecord file, in record order."""
    found = []
    for index, record in enumerate(tfrecord.records(path)):
        try:
            pseudo = tfrecord.example_id(record)
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
        files = sorted(p for p in path.rglob("*") if p.suffix in tfrecord.SUFFIXES)
        if not files:
            raise ValueError(f"{path}: no TFRecord files (*{', *'.join(tfrecord.SUFFIXES)})")
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
            write_json(answer, self._path(answer["pseudo_id"]), indent=None, sort_keys=True)


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
