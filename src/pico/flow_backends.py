"""The optical-flow backends of ``flow.backend``, one record each (Section 3.2's flow stage).

Each record says where the backend runs, which ``flow`` settings change its flow, how long a
snippet takes, which default weights it fetches and how it is built, as torchvision keeps a
model's weights, URL and metadata in one object beside one builder. The workflow
(``pico.plan``), the rerun policy (``pico.rerun``), the weights fetch (``pico.data.weights``)
and the estimators (``pico.data.flow``) all read this table, so adding a backend is one entry
here and one name in the schema's enum (``tests/test_plan.py`` checks that the two agree).
Read at parse time: it imports neither torch nor OpenCV.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse


@dataclass(frozen=True)
class FlowBackend:
    """One flow backend: a family of estimators (``raft``: torchvision's RAFT on a GPU where the
    job has one; ``opencv``: an OpenCV ``DenseOpticalFlow`` on CPUs) and its own details."""

    name: str
    family: str
    #: the ``flow`` keys, besides the backend and the codec, that change the flow it gives
    settings: tuple[str, ...]
    #: generous minutes for one 10-second snippet (300 frames at the paper's 256 short side), on
    #: a CPU and (RAFT) on a GPU
    cpu_minutes: float
    gpu_minutes: float | None = None
    #: raft: the ``torchvision.models.optical_flow`` builder and its default weights (enum member);
    #: opencv: the ``cv2.optflow`` factory (none: DIS, in OpenCV's core)
    builder: str = ""
    default_weights: str = ""
    #: raft: where the default weights live; the file name ends in the first 8 hex digits of the
    #: file's SHA-256 (torch.hub's convention), which the fetch checks
    url: str = ""
    #: opencv: the estimator takes BGR frames, not grayscale
    color: bool = False

    @property
    def on_gpu(self) -> bool:
        """Whether the backend runs on a GPU when its job gets one."""
        return self.gpu_minutes is not None

    @property
    def weights_file(self) -> str:
        """The default weights' file name (torchvision's), empty without default weights."""
        return Path(urlparse(self.url).path).name if self.url else ""

    @property
    def sha256_prefix(self) -> str:
        """The start of the default weights' SHA-256, from the file name."""
        return Path(self.weights_file).stem.rsplit("-", 1)[1]


_RAFT_SETTINGS = ("weights", "iters", "precision")

#: Every backend, by ``flow.backend`` name.
BACKENDS = {
    backend.name: backend
    for backend in (
        FlowBackend(
            "raft",
            "raft",
            _RAFT_SETTINGS,
            cpu_minutes=20,
            gpu_minutes=0.5,
            builder="raft_large",
            default_weights="Raft_Large_Weights.C_T_SKHT_V2",
            url="https://download.pytorch.org/models/raft_large_C_T_SKHT_V2-ff5fadd5.pth",
        ),
        FlowBackend(
            "raft_small",
            "raft",
            _RAFT_SETTINGS,
            cpu_minutes=20,
            gpu_minutes=0.5,
            builder="raft_small",
            default_weights="Raft_Small_Weights.C_T_V2",
            url="https://download.pytorch.org/models/raft_small_C_T_V2-01064c6d.pth",
        ),
        FlowBackend("dis", "opencv", ("dis_preset", "dis_refine"), cpu_minutes=1),
        FlowBackend("deepflow", "opencv", (), cpu_minutes=20, builder="createOptFlow_DeepFlow"),
        FlowBackend("tvl1", "opencv", (), cpu_minutes=20, builder="createOptFlow_DualTVL1"),
        FlowBackend("rlof", "opencv", (), cpu_minutes=20, builder="createOptFlow_DenseRLOF", color=True),
    )
}
