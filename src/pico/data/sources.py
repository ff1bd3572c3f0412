"""Section 3.1's inputs: the list of videos of a dataset, fixed at parse time, and its shards.

An entry is a small dict, ``{"video": id, ...}``, enough for the download stage to fetch or
find the file: ``path`` (local), ``url`` (youtube), ``url``/``start``/``end``/``label``/``split``
(kinetics), the generator's settings (synthetic), a rank in the seeded sample (yt8m: which
video that is, a job finds out, ``pico.data.yt8m``).
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
import re
from pathlib import Path
from urllib.parse import parse_qs, urlparse

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".avi", ".webm", ".mov")
_YT_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def entries(dataset: dict, seed: int) -> list[dict]:
    """Every video of ``dataset`` (a validated config entry), in a stable order."""
    source = dataset["source"]
    if source == "local":
        found = local_entries(dataset["path"])
    elif source == "youtube":
        found = youtube_entries(dataset["ids"], dataset["url_template"])
    elif source == "kinetics":
        found = kinetics_entries(dataset["csv"], dataset["url_template"])
    elif source == "yt8m":
        found = sample_entries(dataset["sample"], dataset["reserve"])
    else:
        found = synthetic_entries(dataset["synthetic"])
    found = found[: dataset.get("limit")]
    _check_unique(found)
    return found


def shards(found: list[dict], per_shard: int) -> dict[str, list[dict]]:
    """Consecutive groups of ``per_shard`` entries, named ``00000``, ``00001``, ..."""
    return {f"{i // per_shard:05d}": found[i : i + per_shard] for i in range(0, len(found), per_shard)}


def shard_groups(names: list[str], per_group: int) -> list[str]:
    """Consecutive groups of ``per_group`` of the shards ``names`` (``shards``' order), each
    named by its first and last shard, ``00000-00003``; with ``per_group`` 1, the shards'
    own names (an ablation's pair files, ``datasets.<name>.shards_per_pair_job``)."""
    if per_group == 1:
        return list(names)
    return [f"{names[i]}-{names[min(i + per_group, len(names)) - 1]}" for i in range(0, len(names), per_group)]


def grouped(group: str) -> list[str]:
    """The shards of a ``shard_groups`` name: ``00004-00006`` -> 00004, 00005, 00006; a
    shard's own name -> itself."""
    first, _, last = group.partition("-")
    return [f"{i:05d}" for i in range(int(first), int(last or first) + 1)]


def local_entries(folder: str) -> list[dict]:
    """Video files under ``folder`` (recursive); the id is the path relative to it."""
    root = Path(folder)
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            if name.lower().endswith(VIDEO_EXTENSIONS) and not name.startswith("."):
                path = Path(dirpath) / name
                found.append({"video": path.relative_to(root).as_posix(), "path": str(path.resolve())})
    return found


def youtube_id(line: str) -> str:
    """The id of a YouTube video from a bare id or a watch/short/youtu.be URL; any other URL
    gets a readable id built from its last path part and a hash of the URL."""
    if _YT_ID.match(line):
        return line
    url = urlparse(line)
    candidates = parse_qs(url.query).get("v", []) + [url.path.rstrip("/").rsplit("/", 1)[-1]]
    if "youtu" in url.netloc:
        for candidate in candidates:
            if _YT_ID.match(candidate):
                return candidate
    stem = re.sub(r"[^A-Za-z0-9_-]", "_", Path(url.path).stem)[:40] or "video"
    return f"{stem}-{hashlib.sha1(line.encode()).hexdigest()[:8]}"


def youtube_entries(ids_file: str, url_template: str) -> list[dict]:
    """One entry per non-empty, non-comment line of ``ids_file`` (an id or a URL)."""
    found = []
    for line in Path(ids_file).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        url = line if "://" in line else url_template.format(id=line)
        found.append({"video": youtube_id(line), "url": url})
    return found


def kinetics_entries(csv_file: str, url_template: str) -> list[dict]:
    """Rows of the official K400 CSV; ids follow the official clip naming
    ``{youtube_id}_{time_start:06d}_{time_end:06d}``."""
    found = []
    with open(csv_file, newline="") as f:
        reader = csv.DictReader(f)
        missing = {"youtube_id", "time_start", "time_end"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{csv_file}: not a Kinetics CSV, missing columns {sorted(missing)}")
        for line, row in enumerate(reader, 2):
            try:
                start, end = float(row["time_start"]), float(row["time_end"])
            except ValueError:
                raise ValueError(f"{csv_file}:{line}: time_start/time_end are not numbers") from None
            found.append(
                {
                    "video": f"{row['youtube_id']}_{int(start):06d}_{int(end):06d}",
                    "url": url_template.format(id=row["youtube_id"]),
                    "start": start,
                    "end": end,
                    "label": row.get("label"),
                    "split": row.get("split"),
                }
            )
    return found


def drawn(sample: int, reserve: float) -> int:
    """How many videos a yt8m sample draws: ``sample`` plus the reserve, a fraction of
    ``sample`` (rounded up) when below 1, else a count."""
    extra = math.ceil(sample * reserve) if reserve < 1 else int(reserve)
    return sample + extra


def sample_entries(sample: int, reserve: float) -> list[dict]:
    """yt8m: one placeholder per rank of the seeded sample and its reserve. The pool is not
    read at parse time (240,000 videos from thousands of TFRecord files); the sample job draws
    which pseudo id each rank is, so the DAG (shards of ranks) is fixed by the config alone."""
    return [{"video": f"rank{rank:07d}", "rank": rank} for rank in range(drawn(sample, reserve))]


def clip_candidates(root: str, entry: dict) -> list[str]:
    """Where K400 downloaders put a clip: flat, per label (spaces or underscores), per
    split/label; mp4, mkv or webm."""
    label, split = entry.get("label"), entry.get("split")
    folders = [root]
    for name in dict.fromkeys(filter(None, [label, label and label.replace(" ", "_")])):
        folders += [os.path.join(root, name)] + ([os.path.join(root, split, name)] if split else [])
    return [os.path.join(folder, entry["video"] + ext) for folder in folders for ext in (".mp4", ".mkv", ".webm")]


def synthetic_entries(settings: dict) -> list[dict]:
    """``settings["videos"]`` generated videos; source rates cycle through ``settings["fps"]``."""
    rates = settings["fps"]
    keys = ("seconds", "width", "height", "cut", "world")
    return [
        {"video": f"synth{i:04d}", "fps": rates[i % len(rates)], **{k: settings[k] for k in keys}}
        for i in range(settings["videos"])
    ]


def file_name(video_id: str) -> str:
    """File-system-safe name for a video id (ids may be relative paths or URLs)."""
    return _UNSAFE.sub("_", video_id.replace("/", "__"))


def _check_unique(found: list[dict]) -> None:
    """Ids, and the file names made from them, must be unique within a dataset."""
    seen: dict[str, str] = {}
    for entry in found:
        name = file_name(entry["video"])
        if name in seen:
            raise ValueError(f"videos {seen[name]!r} and {entry['video']!r} have the same id or file name {name!r}")
        seen[name] = entry["video"]
