"""Issue 25, ingest: one bad video fails only itself, a changed source file is noticed, and
nothing is lost or read from outside a dataset's folder silently. Tiny real videos from ffmpeg."""

import logging
import os
import shutil
import subprocess

import pytest

from pico.data import download, frames, shots, sources, video
from pico.store import framestore, manifest
from pico.store.files import atomic_path
from picotest import run_snakemake, scheduled

SHOTS_OFF = {"shots": False, "snippet_seconds": 1.0, "min_seconds": 0.5}
FRAMES = {"fps": 10, "short_side": 32, "jpeg_quality": 90}


def clip(path, *, size="64x48", seconds=2, audio_seconds=None):
    """A ``seconds``-long H.264 test pattern at 10 fps at ``path`` (str or bytes); an Opus sine
    track of ``audio_seconds`` beside it where given."""
    cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi"]
    cmd += ["-i", f"testsrc=size={size}:rate=10:duration={seconds}"]
    if audio_seconds:
        cmd += ["-f", "lavfi", "-i", f"sine=duration={audio_seconds}", "-map", "0:v", "-map", "1:a", "-c:a", "libopus"]
    subprocess.run([*cmd, "-c:v", "libx264", "-pix_fmt", "yuv420p", path], check=True)
    return path


@pytest.fixture(scope="module")
def landscape(tmp_path_factory):
    return clip(tmp_path_factory.mktemp("clips") / "landscape.mp4")


def local(folder, name="mine"):
    return sources.entries({"source": "local", "path": str(folder)}, 0, name=name)


def through_frames(folder, work, dataset=SHOTS_OFF):
    """A local folder through download, shots and frames as their jobs run them (each table
    written and read back); the final rows by video."""
    tables = [work / f"{stage}.parquet" for stage in ("download", "shots", "videos")]
    manifest.write(download.run_shard(local(folder), "local", work / "media", {}, seed=0), tables[0])
    manifest.write(shots.run_shard(manifest.read(tables[0]), dataset, {}, 0, download_table=tables[0]), tables[1])
    rows = frames.run_shard(manifest.read(tables[1]), FRAMES, work / "frames", download_table=tables[0])
    manifest.write(rows, tables[2])
    return {r["video"]: r for r in manifest.read(tables[2])}


def test_output_names_are_unique_readable_and_fit_the_file_system(tmp_path, landscape):
    for plain in ("good.mp4", "dQw4w9WgXcQ_000010_000020", "rank0000012"):
        assert sources.file_name(plain) == plain  # existing outputs keep their paths
    assert sources.file_name("nested/deeper/good60.mov") == "nested__deeper__good60.mov"
    assert sources.file_name("猫の動画.mp4") == "猫の動画.mp4"  # other scripts' letters are kept: ...
    assert sources.file_name("犬の動画.mp4") == "犬の動画.mp4"  # ... no longer both ____.mp4
    spaced, underscored = sources.file_name("my clip.mp4"), sources.file_name("my_clip.mp4")
    assert spaced != underscored and spaced.startswith("my_clip.mp4-")  # a replaced character: a hash
    long = [sources.file_name("é" * 125 + ext) for ext in (".mp4", ".mkv")]
    assert long[0] != long[1] and all(len(n.encode()) <= sources.NAME_BYTES for n in long)
    for name in ("猫の動画.mp4", "犬の動画.mp4", "my clip.mp4", "my_clip.mp4"):
        shutil.copy(landscape, tmp_path / name)
    assert len(local(tmp_path)) == 4  # no longer refused as a collision
    legal = tmp_path / ("y" * 239 + ".frames.zip")  # 250 bytes: legal, but not with a temporary prefix
    with atomic_path(legal) as tmp:
        tmp.write_text("done")
    assert legal.read_text() == "done"


def test_a_bad_name_or_shape_fails_only_its_own_video(tmp_path, landscape, monkeypatch):
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in (b"good.mp4", b"not-utf8-\xff.mp4", b"l" * 246 + b".mp4"):  # a 250-byte name: the limit is 255
        shutil.copy(landscape, os.fsencode(folder) + b"/" + name)
    clip(folder / "wide.mp4", size="4096x2")
    rows = through_frames(folder, tmp_path)
    assert {v: r["status"] for v, r in rows.items()} == {
        "good.mp4": "ok",
        "l" * 246 + ".mp4": "ok",
        f"not-utf8-\ufffd.mp4-{sources.digest(b'not-utf8-' + bytes([255]) + b'.mp4')}": "ok",
        "wide.mp4": "unsupported",
    }
    assert "4096x2" in rows["wide.mp4"]["reason"] and "65500" in rows["wide.mp4"]["reason"]
    for row in rows.values():
        if row["status"] == "ok":
            with framestore.FrameStore(row["frames"]) as store:
                assert len(store) == 10 and store[0].shape == (32, 43, 3)
    # past the size check: what the encoder or the file system refuses is the video's row too
    monkeypatch.setattr(framestore, "JPEG_MAX_SIDE", 10**6)
    wide = frames.extract(rows["wide.mp4"] | {"status": "ok", "reason": None}, FRAMES, tmp_path / "w.frames.zip")
    assert wide["status"] == "unsupported" and "JPEG encoding failed" in wide["reason"]
    good = frames.extract(rows["good.mp4"], FRAMES, tmp_path / ("n" * 300 + ".frames.zip"))
    assert good["status"] == "unsupported" and "File name too long" in good["reason"]


@pytest.mark.parametrize("stage", ["shots", "frames"])
def test_a_source_replaced_with_its_old_mtime_stops_the_stage_naming_it(tmp_path, landscape, stage):
    """``cp -p``: Snakemake sees no change; the recorded size and mtime do."""
    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copy(landscape, folder / "a.mp4")
    table = tmp_path / "download.parquet"
    manifest.write(download.run_shard(local(folder), "local", tmp_path / "media", {}, seed=0), table)
    (row,) = manifest.read(table)
    assert (row["src_bytes"], row["src_mtime_ns"]) == (landscape.stat().st_size, (folder / "a.mp4").stat().st_mtime_ns)
    if stage == "frames":
        rows = shots.run_shard(manifest.read(table), SHOTS_OFF, {}, 0, download_table=table)
    portrait = clip(tmp_path / "portrait.mp4", size="48x64")
    shutil.copy2(portrait, folder / "a.mp4")  # cp -p
    os.utime(folder / "a.mp4", ns=(row["src_mtime_ns"], row["src_mtime_ns"]))
    with pytest.raises(manifest.SourceChanged) as e:
        if stage == "shots":
            shots.run_shard(manifest.read(table), SHOTS_OFF, {}, 0, download_table=table)
        else:
            frames.run_shard(rows, FRAMES, tmp_path / "frames", download_table=table)
    assert str(folder / "a.mp4") in str(e.value) and f"{landscape.stat().st_size} -> " in str(e.value)
    assert f"--forcerun {table}" in str(e.value)
    assert not (tmp_path / "frames").exists() or not any((tmp_path / "frames").iterdir())


def test_a_replaced_local_file_reruns_its_shard(tmp_path, landscape):
    """The local files are inputs of their shard's download: a new file reruns download, shots
    and frames of its shard only; the rebuild command of a stopped stage schedules the same.
    Names Snakemake cannot take as inputs (not UTF-8, braces) still run."""
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in (b"a.mp4", b"b.mp4", b"c{x}.mp4", b"d\xff.mp4"):
        shutil.copy(landscape, os.fsencode(folder) + b"/" + name)
    dataset = {"source": "local", "path": str(folder), "videos_per_shard": 2, **SHOTS_OFF}
    config = {"datasets": {"mine": dataset}, "frames": {"short_side": 32}, "flow": {"backend": "dis"}}
    run_snakemake(tmp_path, "videos", config=config)
    rows = [r for shard in ("00000", "00001") for r in manifest.read(tmp_path / f"results/mine/videos/{shard}.parquet")]
    assert [r["status"] for r in rows] == ["ok"] * 4
    clip(tmp_path / "portrait.mp4", size="48x64")
    os.replace(tmp_path / "portrait.mp4", folder / "b.mp4")
    out = run_snakemake(tmp_path, "videos", "-n", config=config)
    assert scheduled(out.stdout) == {"download": 1, "detect_shots": 1, "extract_frames": 1, "videos": 1}
    assert "results/mine/download/00000.parquet" in out.stdout
    out = run_snakemake(tmp_path, "videos", "-n", "--forcerun", "results/mine/download/00001.parquet", config=config)
    assert scheduled(out.stdout)["extract_frames"] == 2


def test_mkv_whose_audio_outlasts_the_video_is_not_corrupt(tmp_path):
    path = clip(tmp_path / "v.mkv", seconds=2, audio_seconds=4)
    assert video.probe(path).duration == pytest.approx(2.0, abs=0.01)  # the container says 4.008 s
    (row,) = through_frames(tmp_path, tmp_path / "work", {**SHOTS_OFF, "snippet_seconds": 3.0}).values()
    assert row["status"] == "ok" and row["n_frames"] == 20 and row["end_s"] == pytest.approx(2.0)


def test_an_id_list_that_is_not_utf8_is_an_error_naming_its_line(tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_bytes(b"dQw4w9WgXcQ\n# a comment\nabc\xffdef\n")
    with pytest.raises(ValueError, match=rf"{ids}:3: not UTF-8"):
        sources.youtube_entries(str(ids), "https://www.youtube.com/watch?v={id}")


def test_bad_kinetics_rows_are_that_rows_status_and_nothing_outside_root_is_read(tmp_path, landscape):
    root, outside = tmp_path / "k400", tmp_path / "secret"
    for folder in (root / "abseiling", outside):
        folder.mkdir(parents=True)
    shutil.copy(landscape, root / "abseiling/goodclip000_000001_000003.mp4")
    for name in ("x_000001_000003.mp4", "y_000001_000003.mp4"):  # where ../ in an id or label leads
        shutil.copy(landscape, outside / name)
    rows = [
        ("abseiling", "goodclip000", "1", "3"),
        ("abseiling", "nanclip0000", "nan", "3"),
        ("abseiling", "infclip0000", "1", "inf"),
        ("abseiling", "negclip0000", "-2", "3"),
        ("abseiling", "revclip0000", "3", "1"),
        ("abseiling", "txtclip0000", "one", "3"),
        ("", "../secret/x", "1", "3"),
        ("../secret", "y", "1", "3"),
    ]
    table = tmp_path / "train.csv"
    table.write_text("label,youtube_id,time_start,time_end\n" + "".join(",".join(r) + "\n" for r in rows))
    entries = sources.kinetics_entries(str(table), "https://www.youtube.com/watch?v={id}")
    got = download.run_shard(entries, "kinetics", tmp_path / "media", {}, seed=0, root=str(root))
    assert [r["status"] for r in got] == ["ok"] + ["unavailable"] * 7
    assert got[0]["src_bytes"] == landscape.stat().st_size
    for line, row in enumerate(got[1:], 3):
        assert row["reason"].startswith(f"{table}:{line}: "), row["reason"]
    assert "not a plain name" in got[6]["reason"] and "not a plain name" in got[7]["reason"]
    assert "after time_start" in got[4]["reason"] and "not a number" in got[5]["reason"]


def test_symbolic_links_are_followed_to_their_targets_once(tmp_path, landscape):
    """A folder of links to videos kept elsewhere is a dataset; a link back up is no loop; a
    link to nothing is that video's row, not a missing input of the workflow."""
    folder, elsewhere = tmp_path / "videos", tmp_path / "elsewhere"
    for f in (folder, elsewhere / "more"):
        f.mkdir(parents=True)
    shutil.copy(landscape, elsewhere / "target.mp4")
    shutil.copy(landscape, elsewhere / "more/inside.mp4")
    (folder / "link.mp4").symlink_to(elsewhere / "target.mp4")
    (folder / "linked").symlink_to(elsewhere / "more")
    (folder / "loop").symlink_to(folder)
    (folder / "dangling.mp4").symlink_to(tmp_path / "gone.mp4")
    found = {e["video"]: e for e in local(folder)}
    assert set(found) == {"dangling.mp4", "link.mp4", "linked/inside.mp4"}
    assert found["link.mp4"]["path"] == str(elsewhere / "target.mp4")
    assert sources.trackable(found["link.mp4"]["path"]) and not sources.trackable(found["dangling.mp4"]["path"])
    rows = {r["video"]: r for r in download.run_shard(list(found.values()), "local", tmp_path / "m", {}, seed=0)}
    assert rows["linked/inside.mp4"]["status"] == "ok" and rows["link.mp4"]["path"] == str(elsewhere / "target.mp4")
    assert rows["dangling.mp4"]["status"] == "unavailable" and "gone.mp4" in rows["dangling.mp4"]["reason"]


def test_skipped_files_are_counted_and_a_folder_without_videos_is_refused(tmp_path, landscape, caplog):
    shutil.copy(landscape, tmp_path / "good.mp4")
    shutil.copy(landscape, tmp_path / "._good.mp4")
    shutil.copy(landscape, tmp_path / ".hidden.mkv")
    (tmp_path / "notes.txt").write_text("not a video")
    with caplog.at_level(logging.WARNING, "pico"):
        assert [e["video"] for e in local(tmp_path)] == ["good.mp4"]
    assert (
        "datasets.mine.path" in caplog.text and "2 hidden" in caplog.text and "1 of other types (.txt)" in caplog.text
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a video")
    with pytest.raises(ValueError, match=rf"datasets.mine.path: folder '{empty}' has no video file"):
        local(empty)
