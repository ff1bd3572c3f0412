"""File plumbing: atomic outputs (nothing half-written is ever visible under its final
name), Parquet tables and JSON results whose damage is detected when read, the error that
names a damaged file and how to rebuild it, and read-ahead of the next input while the
current one is processed."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

T = TypeVar("T")
R = TypeVar("R")


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    The temporary name keeps the final name as its suffix (``.tmp-XXXX-clip.mp4``) so tools
    that pick a format from the extension (ffmpeg) still do. On any exception, or a kill
    before the rename, the final path is untouched and the temporary file is removed
    (or, after ``kill -9``, left as a dot-file that nothing reads). An error gets a note
    naming the output it interrupted (a full disk raises deep inside a writer).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_TMP, suffix="-" + _tail(path), dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual mode
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, Exception):
            e.add_note(f"while writing {path} (left unchanged; the partial file was removed)")
        raise


_TMP = ".tmp-"


def _tail(path: Path) -> str:
    """As much of the end of ``path``'s name as fits beside ``atomic_path``'s prefix in its
    folder's name limit (255 bytes on most file systems): a name near the limit is legal, the
    temporary name made from it need not be. The end keeps the extension."""
    try:
        limit = os.pathconf(path.parent, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    room = limit - len(_TMP) - 16 - 1  # mkstemp's random part is 8 characters: room for twice that
    tail = os.fsencode(path.name)[-room:]
    while tail and tail[0] & 0xC0 == 0x80:  # not from the middle of a UTF-8 character
        tail = tail[1:]
    return os.fsdecode(tail)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def rebuild_hint(path: str | os.PathLike, *, progress: bool = False) -> str:
    """How to rebuild ``path``, a damaged file pico wrote, said in its error. Snakemake 9 does
    not rebuild an output that is merely deleted once what was made from it exists ("Nothing
    to be done"), nor a file deleted from a directory output; ``--forcerun`` with the output
    reruns its job and everything after it. A file inside a directory output (one holding
    Snakemake's ``.snakemake_timestamp``) is rebuilt through that folder. ``progress``: the
    file is a job's saved progress (a checkpoint in ``work/``), no output: deleting it makes
    the job, whose failure this is, start over when the same command runs again."""
    if progress:
        return "delete it and run the same snakemake command again: its job starts over"
    path = Path(path)
    if path.is_absolute() and path.is_relative_to(Path.cwd()):
        path = path.relative_to(Path.cwd())  # Snakemake matches outputs by their relative paths
    output = next((folder for folder in path.parents if (folder / ".snakemake_timestamp").exists()), path)
    holds = " (the output folder that holds it: deleting the file alone rebuilds nothing)" if output != path else ""
    return f"rebuild it: rerun your snakemake command with --forcerun {output}{holds}"


def damaged(path: str | os.PathLike, reason: str, *, progress: bool = False) -> ValueError:
    """The error for a damaged file that pico wrote: it names the file, the reason and how to
    rebuild it (``rebuild_hint``)."""
    return ValueError(f"{path}: {reason}; {rebuild_hint(path, progress=progress)}")


def read_json(path: str | os.PathLike):
    """A JSON file pico wrote (a benchmark result, a table); a truncated or otherwise unparsable
    one is a ValueError naming it (``damaged``)."""
    try:
        return json.loads(Path(path).read_text())
    except UnicodeDecodeError as e:
        raise damaged(path, f"not UTF-8 text ({e})") from e
    except json.JSONDecodeError as e:
        raise damaged(path, f"not readable JSON ({e})") from e


def write_json(data, path: str | os.PathLike, *, indent: int | None = 2, sort_keys: bool = False) -> None:
    """``data`` as JSON at ``path``, atomically (``atomic_path``), without a trailing newline:
    indented by ``indent`` spaces (None: on one line), keys sorted if ``sort_keys``."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=indent, sort_keys=sort_keys))


@contextmanager
def parquet_writer(
    path: str | os.PathLike,
    schema: pa.Schema,
    *,
    dictionary: bool | list[str] = True,
    statistics: bool | list[str] = True,
) -> Iterator[pq.ParquetWriter]:
    """A Parquet writer whose file appears at ``path`` only when the block ends; every data
    page carries a CRC-32 (``read_parquet`` verifies them: a flipped bit is an error, not data).
    ``dictionary``, ``statistics``: the columns to dictionary-encode and to write min/max for
    (all, or those named)."""
    with (
        atomic_path(path) as tmp,
        pq.ParquetWriter(
            tmp, schema, write_page_checksum=True, use_dictionary=dictionary, write_statistics=statistics
        ) as writer,
    ):
        yield writer


def write_parquet(table: pa.Table, path: str | os.PathLike) -> None:
    """``table`` to ``path`` atomically, with page checksums (``parquet_writer``)."""
    with parquet_writer(path, table.schema) as writer:
        writer.write_table(table)


def read_parquet(
    path: str | os.PathLike,
    schema: pa.Schema,
    row_groups: list[int] | None = None,
    *,
    metadata: pq.FileMetaData | None = None,
) -> pa.Table:
    """The columns of ``schema`` (all or some of a file's) from a flat Parquet file, checked:
    a truncated file (no footer), a page whose CRC-32 fails, a row group whose row count
    disagrees with its columns' value counts (the footer has no checksum), or a missing or
    mistyped column is a ValueError naming the file. Only those columns' pages are read, and
    of ``row_groups`` only (default: all, in threads; some: in this thread). ``metadata``: the
    file's footer, parsed already (``pq.read_metadata``), so that it is not read again."""
    try:
        with pq.ParquetFile(path, metadata=metadata, page_checksum_verification=True) as f:
            found = dict(zip(f.schema_arrow.names, f.schema_arrow.types))
            wrong = [
                f"{c.name} ({found.get(c.name, 'missing')}, expected {c.type})"
                for c in schema
                if found.get(c.name) != c.type
            ]
            if wrong:
                raise damaged(path, f"unexpected columns: {', '.join(wrong)}")
            if row_groups is None:
                table, row_groups = f.read(columns=schema.names), range(f.metadata.num_row_groups)
            else:
                table = f.read_row_groups(row_groups, columns=schema.names, use_threads=False)
            groups = [f.metadata.row_group(i) for i in row_groups]
    except FileNotFoundError:
        raise  # missing, not damaged: the message names the path already
    except (pa.ArrowException, OSError, UnicodeDecodeError) as e:  # a flipped bit in a footer string
        raise damaged(path, f"not a readable Parquet file ({e})") from e
    if any({g.column(j).num_values for j in range(g.num_columns)} - {g.num_rows} for g in groups):
        raise damaged(path, "row counts in its footer disagree (corrupted)")
    return table


def prefetched(load: Callable[[T], R], items: Iterable[T]) -> Iterator[tuple[T, R]]:
    """Yield ``(item, load(item))``, loading the next item in a background thread meanwhile,
    so decoding overlaps with the caller's compute."""
    with ThreadPoolExecutor(1) as pool:
        items = iter(items)
        pending = None
        for item in items:
            future = pool.submit(load, item)
            if pending is not None:
                yield pending[0], pending[1].result()
            pending = (item, future)
        if pending is not None:
            yield pending[0], pending[1].result()
