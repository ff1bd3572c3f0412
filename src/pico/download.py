"""Section 3.1 / A.1: getting the videos. yt-dlp (Python API) for YouTube and Kinetics,
the generator for the synthetic demo, and a pass-through for local folders.

A video that cannot be had (removed, private, 404, a truncated file after the retries)
becomes a row with status ``unavailable`` and yt-dlp's reason; it never fails the shard.
Transient failures (DNS, timeouts, HTTP 429/5xx) and local errors (a full disk) do fail the
shard, so that its retry fetches the videos instead of losing them.
"""

from __future__ import annotations

import glob
import logging
import os
import re
from pathlib import Path

from pico import logs, sources, synthetic

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
    """yt-dlp options: best video up to ``max_height``, bounded retries, quiet, no cache."""
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
    if section:
        options["download_ranges"] = download_range_func(None, [section])
        options["force_keyframes_at_cuts"] = True
    return options


def fetch(url: str, stem: Path, cfg: dict, section: tuple[float, float] | None = None) -> Path:
    """Download ``url`` (or its ``section`` in seconds) to ``stem``.<ext>; the file's path.

    Raises yt_dlp's DownloadError with yt-dlp's reason when the video cannot be had.
    """
    from yt_dlp import YoutubeDL

    with YoutubeDL(ytdlp_options(stem, cfg, section)) as ydl:
        info = ydl.extract_info(url, download=True)
    return Path(info["requested_downloads"][0]["filepath"])


#: yt-dlp messages of failures that say nothing about the video: the network, the server's
#: load, rate limits. A shard with one of these fails (and is retried) instead of recording
#: the video as unavailable for good.
TRANSIENT = re.compile(
    r"Temporary failure in name resolution|Name or service not known|timed out|Connection (refused|reset)|"
    r"Network is unreachable|HTTP Error (429|5\d\d)|Too Many Requests",
    re.IGNORECASE,
)


def transient(reason: str) -> bool:
    return bool(TRANSIENT.search(reason))


def _reason(error: Exception) -> str:
    text = str(error).removeprefix("ERROR: ").strip()
    return text[:500] or type(error).__name__


def get(entry: dict, source: str, media: Path, cfg: dict, seed: int, root: str | None = None) -> dict:
    """The download-stage row of one entry: where its file is, or why there is none.
    ``root``: a kinetics dataset's folder of already downloaded clips."""
    from yt_dlp.utils import YoutubeDLError

    row = {"video": entry["video"], "source": source, "url": entry.get("url"), "status": "ok"}
    stem = media / sources.file_name(entry["video"])
    if source == "local":
        return {**row, "path": entry["path"]}
    if source == "synthetic":
        vid = synthetic.make_video(seed, entry["video"], entry["seconds"], entry["fps"], entry["width"], entry["height"], entry["cut"],
                                   synthetic.World.from_settings(entry["world"]))
        synthetic.write(vid, stem.with_suffix(".mp4"))
        return {**row, "path": str(stem.with_suffix(".mp4"))}
    if root:  # kinetics with a local root: look the clip up, never download
        candidates = sources.clip_candidates(root, entry)
        found = [c for c in candidates if os.path.isfile(c)]
        if found:
            return {**row, "path": found[0]}
        reason = f"clip not found under {root} (looked for {candidates[0]} and {len(candidates) - 1} more)"
        return {**row, "status": "unavailable", "reason": reason}
    section = (entry["start"], entry["end"]) if source == "kinetics" else None
    try:
        return {**row, "path": str(fetch(entry["url"], stem, cfg, section))}
    except YoutubeDLError as e:
        for partial in media.glob(glob.escape(stem.name) + ".*"):  # yt-dlp's .part/.ytdl leftovers
            partial.unlink()
        if transient(_reason(e)):
            raise RuntimeError(f"{entry['video']} ({entry['url']}): {_reason(e)} -- a transient failure: "
                               "the shard fails so that a retry fetches it, rather than record it unavailable") from e
        return {**row, "status": "unavailable", "reason": _reason(e)}


def run_shard(
    entries: list[dict], source: str, media: str | Path, cfg: dict, seed: int, root: str | None = None
) -> list[dict]:
    """Rows for every entry of a shard; files go under ``media``."""
    media = Path(media)
    media.mkdir(parents=True, exist_ok=True)
    return [get(e, source, media, cfg, seed, root) for e in logs.progress(entries, len(entries), "download", log)]
