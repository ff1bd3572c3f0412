"""Make the repository's Snakemake profiles findable by name, so that
``snakemake --profile slurm results/coco_probe.json`` works from the repository root.

Snakemake looks a profile name up as ``<dir>/<name>/config.yaml`` in the current directory,
then in its user configuration folder (``~/.config/snakemake``, or ``$XDG_CONFIG_HOME/snakemake``),
then the site folder (``snakemake.cli.get_profile_dir``). ``install`` links each of the
repository's ``profiles/<name>`` into the user folder, the place Snakemake documents for
profiles, and never replaces a profile the user already has there: it says how to use pico's.

    python -m pico.profiles profiles     # `make install` runs it in the repository root
"""

from __future__ import annotations

import sys
from pathlib import Path

from snakemake.common import get_appdirs


def user_folder() -> Path:
    """Snakemake's user configuration folder, where it looks profiles up by name."""
    return Path(get_appdirs().user_config_dir)


def install(profiles: Path, folder: Path | None = None) -> list[str]:
    """Link every ``profiles/<name>`` into ``folder`` (Snakemake's user folder); one line per
    profile saying what was done. A link to this repository is kept, a link that points
    nowhere is replaced, anything else is the user's and is left alone."""
    folder = user_folder() if folder is None else folder
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for source in sorted(p for p in profiles.iterdir() if (p / "config.yaml").is_file()):
        target = folder / source.name
        if target.is_symlink() and target.resolve() == source.resolve():
            lines.append(f"profile {source.name}: {target} -> {source.resolve()} (already)")
            continue
        if target.is_symlink() and not target.exists():
            target.unlink()  # a link to a clone that is gone
        if target.exists() or target.is_symlink():
            lines.append(
                f"profile {source.name}: {target} is yours and was left alone; "
                f"use pico's with --profile {source.resolve()}"
            )
            continue
        target.symlink_to(source.resolve(), target_is_directory=True)
        lines.append(f"profile {source.name}: {target} -> {source.resolve()}")
    return lines


if __name__ == "__main__":
    print("\n".join(install(Path(sys.argv[1]))))
