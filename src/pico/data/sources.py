"""Section 3.1's inputs: the list of videos of a dataset, fixed at parse time, and its shards.

An entry is a small dict, ``{"video": id, ...}``, enough for the download stage to fetch or
find the file: ``path`` (local), ``url`` (youtube), ``url``/``start``/``end``/``label``/``split``
(kinetics), the generator's settings (synthetic), a rank in the seeded sample (yt8m: which
video that is, a job finds out, ``pico.data.yt8m``).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import logging
import math
import os
import pickle
import re
import tempfile
import unicodedata
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, urlparse

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".avi", ".webm", ".mov")
_YT_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")
#: The longest file name (UTF-8 bytes) ``file_name`` makes, before a stage's suffix
#: (``.frames.zip``, ``.flow.zip.json``): well inside the 255 bytes of common file systems
#: (143 on eCryptfs), with room for ``atomic_path``'s temporary prefix.
NAME_BYTES = 120
#: A character that makes a name more than one plain path component.
_NOT_PLAIN = re.compile(r"[/\\\x00]")
#: An id that ``file_name`` keeps as it is when short enough: ASCII letters, digits, ``.``, ``_``, ``-``.
_PLAIN = re.compile(r"[A-Za-z0-9._-]+")


def entries(dataset: dict, seed: int, *, name: str) -> list[dict]:
    """Every video of ``dataset`` (a validated config entry, ``datasets.<name>``), in a stable order."""
    source = dataset["source"]
    if source == "local":
        found = local_entries(dataset["path"], name=name)
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


#: Where the parse-time lists of sources read from a file are cached, under the working
#: directory, beside Snakemake's own records.
CACHE = ".snakemake/pico/sources"
#: The config key of the file each cached source reads (a yt8m sample reads none).
_LIST_FILE = {"youtube": "ids", "kinetics": "csv", "yt8m": None}
#: This module's code, part of every cache key: another version of it reads the lists afresh.
_CODE = hashlib.sha1(Path(__file__).read_bytes()).hexdigest()


def cached_entries(dataset: dict, seed: int, *, name: str, cache: str | os.PathLike = CACHE) -> list[dict]:
    """``entries``, from ``cache`` when neither the dataset's settings, its list file (size,
    modification time) nor this module changed. Snakemake parses the workflow on every dry run
    and again in every cluster job, and reading K400's 240,000-row CSV is most of that parse.
    A local folder is always walked afresh: a file added deep inside changes no time this could
    key on cheaply. A synthetic list, made from its settings alone, is made afresh too."""
    if dataset["source"] not in _LIST_FILE:
        return entries(dataset, seed, name=name)
    key = [dataset, seed, name, _CODE]
    if list_file := _LIST_FILE[dataset["source"]]:
        stat = os.stat(dataset[list_file])
        key += [os.path.abspath(dataset[list_file]), stat.st_size, stat.st_mtime_ns]
    path = Path(cache) / f"{digest(json.dumps(key, sort_keys=True).encode())}.pickle"
    try:
        return pickle.loads(path.read_bytes())
    except FileNotFoundError:
        pass
    except Exception as e:  # a damaged file fails unpickling in many ways; the list is read afresh
        log.warning("%s: cached source list not readable (%s); reading the sources again", path, e)
    found = entries(dataset, seed, name=name)
    # Written by hand, not with pico.store.files.atomic_path: that module imports pyarrow, and no
    # module the rules import at parse time may (tests/test_ablations.py).
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".tmp-", delete=False) as tmp:
        tmp.write(pickle.dumps(found, protocol=pickle.HIGHEST_PROTOCOL))
    os.replace(tmp.name, path)  # whole or not at all: jobs parsing at once may write the same key
    return found


def local_entries(folder: str, *, name: str) -> list[dict]:
    """Video files under ``folder`` (recursive), the id being the path relative to it as listed.

    Symbolic links are followed, to files and folders, wherever they point: a folder of links
    to videos kept elsewhere is a dataset as much as a folder of copies; ``path`` is the link's
    target, so that the target is what is read, recorded and tracked. A folder reached a second
    way (a link back up) is listed once. Hidden files (``.`` names, e.g. macOS's ``._`` copies)
    and files of other types are skipped, with a warning that counts them; a folder without a
    video file is an error naming ``datasets.<name>.path``.
    """
    root = Path(folder)
    found, skipped = [], Counter()
    for dirpath, filenames in _walk(root, skipped):
        for file in sorted(filenames):
            if file.startswith("."):
                skipped["hidden"] += 1
            elif not file.lower().endswith(VIDEO_EXTENSIONS):
                skipped[Path(file).suffix.lower() or "no extension"] += 1
            else:
                path = Path(dirpath) / file
                video = readable(path.relative_to(root).as_posix())
                found.append({"video": video, "path": os.path.realpath(path)})
    where = f"datasets.{name}.path: folder '{folder}'"
    if skipped:
        log.warning("%s: skipped %s", where, _skipped(skipped))
    if not found:
        raise ValueError(f"{where} has no video file ({' '.join(VIDEO_EXTENSIONS)}), searched recursively")
    return found


def _walk(root: Path, skipped: Counter):
    """``(folder, file names)`` under ``root``, in name order, through links to folders; a
    folder already listed (a link back up, or a second link to it) or one that cannot be read
    is counted in ``skipped``."""
    seen = set()
    for dirpath, dirnames, filenames in os.walk(
        root, onerror=lambda e: skipped.update(["unreadable"]), followlinks=True
    ):
        real = os.path.realpath(dirpath)
        if real in seen:
            skipped["repeated folder"] += 1
            dirnames.clear()
            continue
        seen.add(real)
        dirnames.sort()
        yield dirpath, filenames


#: How ``local_entries``'s warning says each kind of folder it skipped.
_SKIPPED_FOLDERS = {"repeated folder": "reached a second time through a link", "unreadable": "that could not be read"}


def _skipped(counts: Counter) -> str:
    """What ``local_entries`` skipped, in words: ``2 hidden files, 1 of other types (.txt)``."""
    counts = Counter(counts)
    hidden = counts.pop("hidden", 0)
    folders = [(counts.pop(key), what) for key, what in _SKIPPED_FOLDERS.items() if key in counts]
    parts = [f"{hidden} hidden file{'s' * (hidden != 1)} (names starting with '.')"] if hidden else []
    if counts:
        parts.append(f"{sum(counts.values())} of other types ({', '.join(sorted(counts))})")
    parts += [f"{n} folder{'s' * (n != 1)} {what}" for n, what in folders]
    return ", ".join(parts)


def readable(name: str) -> str:
    """``name`` as valid UTF-8 text (Parquet's strings are): itself, or for a file name that is
    not UTF-8 (its bad bytes as surrogates, as ``os`` lists them) the name with each bad byte
    shown as U+FFFD and ``-`` and 8 hex digits of its bytes' SHA-1 after it, so that two such
    names stay apart."""
    try:
        name.encode()
    except UnicodeEncodeError:
        raw = os.fsencode(name)
        return f"{raw.decode(errors='replace')}-{digest(raw)}"
    return name


def trackable(path: str) -> bool:
    """Whether Snakemake can take the file at ``path`` as an input: it exists, and its path is
    UTF-8 (Snakemake writes its inputs to UTF-8 lock files) without braces (read as wildcards,
    which an input cannot escape) or line breaks. Other files are checked by their recorded
    size and modification time only (``pico.store.manifest.check_sources``)."""
    try:
        path.encode()
    except UnicodeEncodeError:
        return False
    return not any(c in path for c in "{}\n\r") and os.path.isfile(path)


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
    return f"{stem}-{digest(line.encode())}"


def text_lines(path: str) -> list[str]:
    """The lines of the UTF-8 text file ``path`` (line ends kept, a byte-order mark dropped);
    a line that is not UTF-8 is an error naming the file and the line."""
    lines = []
    for number, line in enumerate(Path(path).read_bytes().removeprefix(codecs.BOM_UTF8).splitlines(True), 1):
        try:
            lines.append(line.decode())
        except UnicodeDecodeError as e:
            raise ValueError(f"{path}:{number}: not UTF-8 text ({e.reason} at byte {e.start}: {line[:80]!r})") from None
    return lines


def youtube_entries(ids_file: str, url_template: str) -> list[dict]:
    """One entry per non-empty, non-comment line of ``ids_file`` (an id or a URL)."""
    found = []
    for line in text_lines(ids_file):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        url = line if "://" in line else url_template.format(id=line)
        found.append({"video": youtube_id(line), "url": url})
    return found


def kinetics_entries(csv_file: str, url_template: str) -> list[dict]:
    """Rows of the official K400 CSV; ids follow the official clip naming
    ``{youtube_id}_{time_start:06d}_{time_end:06d}``.

    A row that cannot be a clip (times not numbers, not finite, negative or not increasing; a
    ``youtube_id``, ``label`` or ``split`` that is not a plain name, which a clip's path under
    ``root`` is built from) gets a ``problem`` naming the CSV line: the download stage makes it
    that video's ``unavailable`` row, and the other rows go on."""
    reader = csv.DictReader(text_lines(csv_file))
    missing = {"youtube_id", "time_start", "time_end"} - set(reader.fieldnames or [])
    if missing:
        raise ValueError(f"{csv_file}: not a Kinetics CSV, missing columns {sorted(missing)}")
    return [_kinetics_entry(row, url_template, f"{csv_file}:{reader.line_num}") for row in reader]


def _kinetics_entry(row: dict, url_template: str, where: str) -> dict:
    """The entry of a Kinetics CSV row (at ``where``, ``file:line``); its keys in the order
    they always had: a job's params are compared as text, and another order would rerun every
    download job of an existing run."""
    url, label, split = url_template.format(id=row["youtube_id"]), row.get("label"), row.get("split")
    problem = _clip_problem(row)
    if problem:
        video = f"{row['youtube_id']}_{row['time_start']}_{row['time_end']}"
        return {"video": video, "url": url, "label": label, "split": split, "problem": f"{where}: {problem}"}
    start, end = float(row["time_start"]), float(row["time_end"])
    video = f"{row['youtube_id']}_{int(start):06d}_{int(end):06d}"
    return {"video": video, "url": url, "start": start, "end": end, "label": label, "split": split}


def _clip_problem(row: dict) -> str | None:
    """Why a Kinetics CSV row cannot be a clip, or None."""
    for key in ("youtube_id", "label", "split"):
        value = row.get(key) or ""
        if (key == "youtube_id" or value) and not plain_name(value):
            return f"{key} {value!r} is not a plain name (a clip's path is built from it)"
    times = {}
    for key in ("time_start", "time_end"):
        try:
            times[key] = float(row[key])
        except (TypeError, ValueError):
            return f"{key} {row[key]!r} is not a number"
        if not math.isfinite(times[key]) or times[key] < 0:
            return f"{key} {row[key]!r} is not a finite time of at least 0"
    if times["time_end"] <= times["time_start"]:
        return f"time_end {row['time_end']} is not after time_start {row['time_start']}"
    return None


def plain_name(name: str) -> bool:
    """Whether ``name`` joined to a folder names something inside it: not empty, ``.`` or
    ``..``, no ``/``, ``\\`` or NUL."""
    return name not in ("", ".", "..") and not _NOT_PLAIN.search(name)


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
    """File-system-safe name for a video id (ids may be relative paths or URLs), the stem of
    every per-video output: ``/`` becomes ``__``; ASCII letters, digits, ``.``, ``_`` and ``-``
    and other scripts' letters, marks and digits stay; any other character becomes ``_``. An id
    of such characters within ``NAME_BYTES`` keeps exactly this name; one with a character
    replaced, or cut to ``NAME_BYTES``, ends in ``-`` and 8 hex digits of the id's SHA-1, so
    that names stay unique and within the file system's limit."""
    if len(video_id) <= NAME_BYTES and _PLAIN.fullmatch(video_id):
        return video_id  # the common case, a YouTube or clip id: checked in one regex pass, not per character
    name = video_id.replace("/", "__")
    safe = "".join(c if _kept(c) else "_" for c in name)
    if safe == name and len(name.encode()) <= NAME_BYTES:
        return name
    head = safe.encode()[: NAME_BYTES - 9].decode(errors="ignore")  # a character cut in two is dropped
    return f"{head}-{digest(video_id.encode())}"


def _kept(c: str) -> bool:
    """Whether ``file_name`` keeps the character ``c``."""
    if c.isascii():
        return c.isalnum() or c in "._-"
    return unicodedata.category(c)[0] in "LMN"


def digest(data: bytes) -> str:
    """8 hex digits of ``data``'s SHA-1: what keeps a shortened or replaced name unique."""
    return hashlib.sha1(data).hexdigest()[:8]


def _check_unique(found: list[dict]) -> None:
    """Ids, and the file names made from them, must be unique within a dataset."""
    seen: dict[str, str] = {}
    for entry in found:
        name = file_name(entry["video"])
        if name in seen:
            raise ValueError(f"videos {seen[name]!r} and {entry['video']!r} have the same id or file name {name!r}")
        seen[name] = entry["video"]
