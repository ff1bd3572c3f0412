"""Section 3.1 / A.1: getting the videos. yt-dlp (Python API) for YouTube and Kinetics,
the generator for the synthetic demo, and a pass-through for local folders.

A video that cannot be had (removed, private, age- or geo-restricted, 404, a truncated file
after the retries, over ``max_filesize`` or ``max_duration``) becomes a row with status
``unavailable`` and the reason; a downloaded file that is not a usable video is removed and its
row says ``corrupt`` (or ``no_video_stream``); neither fails the shard. Transient failures (DNS,
timeouts, a download past ``deadline_seconds``, HTTP 429/5xx, YouTube's "confirm you're not a
bot" wall) and local errors (a full disk) do fail the shard, after ``bot_backoff_seconds`` for a
rate limit, so that its retry fetches the videos instead of losing them.

Resumable inside a shard: each finished video (its file, or its final row) is recorded in the
shard's journal, ``{table}.partial/`` beside the shard's table, outside the job's outputs, which
Snakemake clears before a retry. A retry takes every video the journal has and fetches only the
rest; the files move into the media folder when the shard ends.
"""

from __future__ import annotations

import contextlib
import glob
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from operator import itemgetter
from pathlib import Path

from pico import logs
from pico.data import sources, synthetic, video
from pico.store import manifest

log = logging.getLogger(__name__)


class _YtdlpLog:
    """Route yt-dlp's messages into the rule's log."""

    def debug(self, msg: str) -> None:
        log.debug("yt-dlp: %s", msg)

    def info(self, msg: str) -> None:
        log.debug("yt-dlp: %s", msg)

    def warning(self, msg: str) -> None:
        log.warning("yt-dlp: %s", msg)

    def error(self, msg: str) -> None:
        log.info("yt-dlp: %s", msg)


def ytdlp_options(stem: Path, cfg: dict, section: tuple[float, float] | None = None) -> dict:
    """yt-dlp options: best video up to ``max_height``, bounded retries, quiet, no cache; a
    cookies file, a bandwidth limit, sleeps between requests and downloads and a proxy where
    the config gives them."""
    from yt_dlp.utils import download_range_func

    height, retries, backoff = cfg["max_height"], cfg["retries"], cfg["retry_backoff_seconds"]

    def sleep(n: int) -> float:  # exponential backoff, capped
        return min(backoff * 2.0**n, 60.0)

    options = {
        "outtmpl": f"{stem}.%(ext)s",
        "format": f"bv*[height<={height}]/b[height<={height}]/bv*/b",
        "noplaylist": True,
        "retries": retries,
        "fragment_retries": retries,
        "extractor_retries": retries,
        "file_access_retries": retries,
        "retry_sleep_functions": {"http": sleep, "fragment": sleep, "extractor": sleep},
        "socket_timeout": cfg["socket_timeout"],
        "quiet": True,
        "no_warnings": False,
        "noprogress": True,
        "cachedir": False,
        "overwrites": True,
        "continuedl": False,
        "logger": _YtdlpLog(),
    }
    optional = {
        "cookiefile": cfg["cookies"],
        "ratelimit": cfg["rate_limit"],
        "proxy": cfg["proxy"],
        "sleep_interval": cfg["sleep_seconds"] or None,
        "sleep_interval_requests": cfg["sleep_requests"] or None,
        "extractor_args": cfg["extractor_args"] or None,
    }
    options.update({k: v for k, v in optional.items() if v is not None})
    if section:
        options["download_ranges"] = download_range_func(None, [section])
        options["force_keyframes_at_cuts"] = True
    return options


class Failed(Exception):
    """The video could not be fetched, or is over a bound; ``reason`` says why (yt-dlp's words)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class OverBound(Exception):
    """Raised inside yt-dlp (from a progress hook) to stop a download over a bound."""


class Bounds:
    """``max_duration`` and ``max_filesize`` of the download config: yt-dlp's match filter sees
    the duration and the chosen format's size before any media byte is fetched (where the site
    says them), its progress hook the bytes as they come, and ``get`` the file. ``whole``: a
    whole video, not a section (a Kinetics clip), whose source's duration and size say nothing
    about the clip."""

    def __init__(self, cfg: dict, *, whole: bool):
        self.max_seconds, self.max_bytes, self.whole = cfg["max_duration"], cfg["max_filesize"], whole
        self.rejected: str | None = None

    def over(self, *, seconds: float | None = None, size: int | None = None) -> str | None:
        """The bound a duration or size breaks, in words, or None."""
        if seconds is not None and seconds > self.max_seconds:
            return f"duration {seconds:g} s > download.max_duration {self.max_seconds:g} s"
        if size is not None and size > self.max_bytes:
            return f"{size} bytes > download.max_filesize {self.max_bytes}"
        return None

    def match(self, info: dict, *, incomplete: bool = False) -> str | None:
        """yt-dlp's ``match_filter``: a reason skips the video (remembered in ``rejected``)."""
        if self.whole:
            size = info.get("filesize") or info.get("filesize_approx")
            self.rejected = self.over(seconds=info.get("duration"), size=size)
        return self.rejected

    def hook(self, progress: dict) -> None:
        """yt-dlp's progress hook: stops a download whose announced or received bytes are over."""
        reason = self.over(size=max(progress.get("total_bytes") or 0, progress.get("downloaded_bytes") or 0))
        if reason:
            raise OverBound(reason)


def fetch(url: str, stem: Path, cfg: dict, section: tuple[float, float] | None = None) -> Path:
    """Download ``url`` (or its ``section`` in seconds) to ``stem``.<ext>; the file's path.

    yt-dlp runs in a child process (``_child``) killed, with the ffmpeg it runs, at
    ``cfg['deadline_seconds']``: a server that drips bytes keeps every read under
    ``socket_timeout``, and a read blocked in yt-dlp or ffmpeg never returns to a hook, so only a
    process (a thread cannot be killed) bounds the wall time. Raises Failed with yt-dlp's reason
    when the video cannot be had or is over a bound, and with a reason that reads as transient
    ("timed out") past the deadline.
    """
    request = json.dumps({"url": url, "stem": str(stem), "cfg": cfg, "section": section})
    child = subprocess.Popen(
        [sys.executable, "-c", "from pico.data import download; download._child()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: the kill reaches ffmpeg too
    )
    try:
        out, err = child.communicate(request, timeout=cfg["deadline_seconds"])
    except BaseException as e:  # the deadline, or this job interrupted: no download outlives it
        with contextlib.suppress(ProcessLookupError):  # the group ended on its own meanwhile
            os.killpg(child.pid, signal.SIGKILL)
        _relay(child.communicate()[1])
        if isinstance(e, subprocess.TimeoutExpired):
            limit = cfg["deadline_seconds"]
            raise Failed(f"timed out: no whole download within {limit:g} s (download.deadline_seconds)") from None
        raise
    _relay(err)
    try:
        result = json.loads(out)
    except ValueError:
        raise RuntimeError(
            f"{url}: the download process ended (exit code {child.returncode}) without a result"
        ) from None
    if "failed" in result:
        raise Failed(result["failed"])
    return Path(result["path"])


def _relay(err: str) -> None:
    """The child's log lines (``<level> <message>``) into this process's log."""
    for line in err.splitlines():
        level, _, message = line.partition(" ")
        if level.isdigit():
            log.log(int(level), "%s", message)
        elif line.strip():
            log.warning("download process: %s", line)


def _child() -> None:
    """The child process of ``fetch``: one download, its request as JSON on stdin, its result as
    JSON on stdout (``{"path"}`` or ``{"failed": reason}``), its log on stderr. Whatever else
    writes to stdout (yt-dlp, the ffmpeg it runs) goes to stderr, so the result stays whole."""
    result = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG, format="%(levelno)d %(message)s")
    request = json.load(sys.stdin)
    section = tuple(request["section"]) if request["section"] else None
    json.dump(_download(request["url"], Path(request["stem"]), request["cfg"], section), result)
    result.close()


def _download(url: str, stem: Path, cfg: dict, section: tuple[float, float] | None) -> dict:
    """yt-dlp's download of ``url`` within the bounds: ``{"path"}`` or ``{"failed": reason}``."""
    from yt_dlp import YoutubeDL
    from yt_dlp.utils import YoutubeDLError

    bounds = Bounds(cfg, whole=section is None)
    options = {**ytdlp_options(stem, cfg, section), "match_filter": bounds.match, "progress_hooks": [bounds.hook]}
    try:
        with YoutubeDL(options) as ydl:
            info = ydl.extract_info(url, download=True)
    except (YoutubeDLError, OverBound) as e:
        return {"failed": _reason(e)}
    path = (info.get("requested_downloads") or [{}])[0].get("filepath")
    if bounds.rejected or not path:
        return {"failed": bounds.rejected or "yt-dlp fetched no file"}
    return {"path": path}


#: yt-dlp messages of failures that say nothing about the video: the network, the server's
#: load, rate limits. A shard with one of these fails (and is retried) instead of recording
#: the video as unavailable for good.
TRANSIENT = re.compile(
    r"Temporary failure in name resolution|Name or service not known|timed out|Connection (refused|reset)|"
    r"Network is unreachable|HTTP Error (429|5\d\d)|Too Many Requests|confirm you.re not a bot|"
    r"No space left on device|Disk quota exceeded",
    re.IGNORECASE,
)
#: Of those, the ones that say the client is being throttled: wait before failing the job.
RATE_LIMITED = re.compile(r"HTTP Error 429|Too Many Requests|confirm you.re not a bot", re.IGNORECASE)


def transient(reason: str) -> bool:
    return bool(TRANSIENT.search(reason))


class Transient(RuntimeError):
    """A failure that says nothing about the video: the shard fails for a retry."""


def _reason(error: Exception) -> str:
    text = str(error).removeprefix("ERROR: ").strip()
    return text[:500] or type(error).__name__


def source_row(path: str, stem: Path) -> dict:
    """A download row's ``path``, ``src_bytes`` and ``src_mtime_ns`` for a file read where it
    lies (a local file, a clip under a kinetics root: ``manifest.check_sources`` compares them
    later), or its ``unavailable`` status and reason (a link to nothing, a file gone or
    unreadable since it was listed). A path that is not UTF-8 (Parquet's strings are) is read
    through a symbolic link to it at ``stem`` and its extension, in the shard's media folder."""
    try:
        record = manifest.source_record(path)
    except OSError as e:
        return {"status": "unavailable", "reason": f"{sources.readable(path)}: {e.strerror}"}
    if sources.readable(path) != path:
        path = _link(path, stem.with_name(stem.name + Path(path).suffix))
    return {"path": path, **record}


def _link(target: str, link: Path) -> str:
    """A symbolic link at ``link`` to ``target`` (replacing one an earlier try made); its path."""
    link.unlink(missing_ok=True)
    os.symlink(target, link)
    return str(link)


def get(entry: dict, source: str, media: Path, cfg: dict, *, seed: int, root: str | None = None) -> dict:
    """The download-stage row of one entry: where its file is, or why there is none.
    ``root``: a kinetics dataset's folder of already downloaded clips."""
    row = {"video": entry["video"], "source": source, "url": entry.get("url"), "status": "ok"}
    stem = media / sources.file_name(entry["video"])
    if "problem" in entry:  # a kinetics row that cannot be a clip (sources.kinetics_entries)
        return {**row, "status": "unavailable", "reason": entry["problem"]}
    if source == "local":
        return {**row, **source_row(entry["path"], stem)}
    if source == "synthetic":
        vid = synthetic.make_video(
            seed,
            entry["video"],
            entry["seconds"],
            entry["fps"],
            entry["width"],
            entry["height"],
            entry["cut"],
            synthetic.World.from_settings(entry["world"]),
        )
        synthetic.write(vid, stem.with_suffix(".mp4"))
        return {**row, "path": str(stem.with_suffix(".mp4"))}
    if root:  # kinetics with a local root: look the clip up, never download
        candidates = sources.clip_candidates(root, entry)
        found = [c for c in candidates if os.path.isfile(c)]
        if found:
            return {**row, **source_row(found[0], stem)}
        reason = f"clip not found under {root} (looked for {candidates[0]} and {len(candidates) - 1} more)"
        return {**row, "status": "unavailable", "reason": reason}
    section = (entry["start"], entry["end"]) if source == "kinetics" else None
    start = time.perf_counter()
    try:
        path = fetch(entry["url"], stem, cfg, section)
    except Failed as e:
        for partial in media.glob(glob.escape(stem.name) + ".*"):  # yt-dlp's .part/.ytdl leftovers
            partial.unlink()
        reason = e.reason
        if transient(reason):
            if RATE_LIMITED.search(reason) and cfg["bot_backoff_seconds"]:
                log.warning(
                    "rate-limited (%s): waiting %s s before failing the shard", reason, cfg["bot_backoff_seconds"]
                )
                time.sleep(cfg["bot_backoff_seconds"])
            raise Transient(
                f"{entry['video']} ({entry['url']}): {reason} -- a transient failure: "
                "the shard fails so that a retry fetches it, rather than record it unavailable"
            ) from e
        return {**row, "status": "unavailable", "reason": reason}
    row = {
        **row,
        "path": str(path),
        "download_bytes": path.stat().st_size,
        "download_seconds": round(time.perf_counter() - start, 3),
    }
    return checked(row, path, cfg)


def checked(row: dict, path: Path, cfg: dict) -> dict:
    """A downloaded file's row after a look at the file: one that is not a usable video
    (``video.probe``: corrupt, no video stream) or is over a bound (where the site did not say
    the duration or size before the download) is removed from the media folder, pico's own
    download, and the row says why."""
    try:
        info = video.probe(path)
    except video.VideoError as e:
        status, reason = e.status, e.reason
    else:
        status, reason = "unavailable", Bounds(cfg, whole=True).over(seconds=info.duration, size=row["download_bytes"])
    if reason is None:
        return row
    path.unlink()
    log.info("%s: %s: %s; the downloaded file was removed", row["video"], status, reason)
    return {**row, "status": status, "reason": reason, "path": None}


class Journal:
    """A shard's finished videos, kept across retries in ``folder`` (outside the job's
    outputs): their files, and one JSON line per final row in ``rows.jsonl``, each line flushed
    and synced as the video ends. A last line cut short by a kill is ignored."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._file = self.folder / "rows.jsonl"
        self._lock = threading.Lock()

    def done(self) -> dict[str, dict]:
        """The rows recorded so far whose file (if any) is still there, by video."""
        rows = {}
        if self._file.exists():
            for line in self._file.read_text().splitlines():
                try:
                    row = json.loads(line)
                except ValueError:
                    continue  # the partial last line of a killed job
                if row.get("path") is None or os.path.isfile(row["path"]):
                    rows[row["video"]] = row
        return rows

    def record(self, row: dict) -> None:
        with self._lock, open(self._file, "a") as f:
            f.write(json.dumps(row, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())


def journal_folder(table: str | Path) -> Path:
    """Where a shard's journal lives: beside its table, ``{table}.partial``."""
    return Path(f"{table}.partial")


def run_shard(
    entries: list[dict],
    source: str,
    media: str | Path,
    cfg: dict,
    *,
    seed: int,
    root: str | None = None,
    journal: str | Path | None = None,
) -> list[dict]:
    """Rows for every entry of a shard, in the entries' order; files end under ``media``.
    With a ``journal`` folder (youtube, kinetics and yt8m downloads): videos it holds from an
    earlier try are not fetched again, new ones are fetched ``cfg['parallel']`` at a time into
    it and recorded as they end, and the files move into ``media`` once every video is done."""
    media = Path(media)
    media.mkdir(parents=True, exist_ok=True)
    if journal is None or source in ("local", "synthetic"):
        return [
            get(e, source, media, cfg, seed=seed, root=root)
            for e in logs.progress(entries, len(entries), "download", log, name=itemgetter("video"))
        ]
    book = Journal(journal)
    done = book.done()
    todo = [e for e in entries if e["video"] not in done]
    if done:
        log.info(
            "download: %d of %d videos from an earlier try (%s), %d to fetch",
            len(entries) - len(todo),
            len(entries),
            book.folder,
            len(todo),
        )
    start = time.perf_counter()

    def one(entry: dict) -> dict:
        row = get(entry, source, book.folder, cfg, seed=seed, root=root)
        book.record(row)
        return row

    pool, fetched = ThreadPoolExecutor(max(1, cfg["parallel"])), 0
    try:
        for row in logs.progress(pool.map(one, todo), len(todo), "download", log, name=itemgetter("video")):
            done[row["video"]], fetched = row, fetched + (row.get("download_bytes") or 0)
    finally:  # on a failure, start no more downloads: those running end and are recorded
        pool.shutdown(wait=True, cancel_futures=True)
    rows = []
    for entry in entries:
        row = done[entry["video"]]
        if (
            row.get("path") and Path(row["path"]).resolve().parent == book.folder.resolve()
        ):  # yt-dlp's paths are absolute
            target = media / Path(row["path"]).name
            os.replace(row["path"], target)  # same file system: the journal sits beside the outputs
            row = {**row, "path": str(target)}
        rows.append(row)
    seconds = time.perf_counter() - start
    log.info(
        "download: %d videos; this try fetched %d, %.1f MB in %.1f s (%.2f MB/s)",
        len(rows),
        len(todo),
        fetched / 1e6,
        seconds,
        fetched / 1e6 / max(seconds, 1e-9),
    )
    return rows
