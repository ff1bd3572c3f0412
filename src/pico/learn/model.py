"""Sections 2 and 3.4: the dense embedding f (frozen ResNet + FPN + Panoptic-FPN semantic
branch, 128-d at 1/4 resolution), MoCo-v2's projection head as 1x1 convolutions, and pixel
contrast with a momentum key network and a queue of pixel keys (Eq. 1, MoCo-v2's design).

The encoder and FPN are torchvision's ``BackboneWithFPN``, the backbone of torchvision's Mask
R-CNN, so pretrained weights plug into the detection benchmark unchanged.
"""

from __future__ import annotations

import copy
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from pico.store.checkpoint import load_weights

#: Channels of the four ResNet stages (C2..C5) per architecture.
STAGE_CHANNELS = {"resnet18": [64, 128, 256, 512], "resnet50": [256, 512, 1024, 2048]}
STRIDE = 4  # the dense output's resolution, 1/4 (A.1: point coordinates are scaled by 1/4)


def load_moco_encoder(arch: str, checkpoint: str | None) -> nn.Module:
    """A torchvision ResNet initialised from a MoCo(-v2) checkpoint's query encoder
    (``state_dict`` keys ``module.encoder_q.*``; the fc/MLP head is dropped). Every other
    weight must match exactly: a missing or unexpected key is an error naming the file. The
    stand-in encoder pico trains is verified as it is read; a downloaded checkpoint, which has
    no pico seal, is read as it is (``pico.store.checkpoint.load_weights``)."""
    encoder = getattr(torchvision.models, arch)(weights=None)
    if checkpoint is None:
        return encoder
    state = load_weights(checkpoint)
    state = state.get("state_dict", state) if isinstance(state, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"{checkpoint}: not a checkpoint of weights by name (not a MoCo checkpoint)")
    prefix = "module.encoder_q."
    weights = {
        k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix) and not k.startswith(prefix + "fc.")
    }
    if not weights:
        raise ValueError(f"{checkpoint}: no '{prefix}*' weights (not a MoCo checkpoint)")
    expected = {k for k in encoder.state_dict() if not k.startswith("fc.")}
    missing, unexpected = expected - weights.keys(), weights.keys() - expected
    if missing or unexpected:
        raise ValueError(
            f"{checkpoint}: {len(missing)} missing keys (e.g. {sorted(missing)[:2]}), "
            f"{len(unexpected)} unexpected (e.g. {sorted(unexpected)[:2]}) for {arch}"
        )
    encoder.load_state_dict(weights, strict=False)  # fc stays at its (unused) initialisation
    return encoder


def dilated_encoder(arch: str, checkpoint: str | None) -> nn.Module:
    """The MoCo-v2 baseline of Table 1 (A.2.1): the ResNet with every stride-2 stage made
    stride 1 and its dilation doubled (Chen et al. 2017, Yu et al. 2017), so its last stage is
    at 1/4 resolution like the decoders; returns that stage's map (B, C5, H/4, W/4).
    torchvision dilates Bottleneck ResNets only (resnet50, the paper's)."""
    dilated = getattr(torchvision.models, arch)(weights=None, replace_stride_with_dilation=[True, True, True])
    dilated.load_state_dict(load_moco_encoder(arch, checkpoint).state_dict())  # dilation has no weights
    return nn.Sequential(*list(dilated.children())[:-2])


def backbone(arch: str, checkpoint: str | None, freeze: bool) -> BackboneWithFPN:
    """Encoder (C2..C5) + FPN (P2..P5, 256 channels, plus the max-pool level for Mask R-CNN)."""
    encoder = load_moco_encoder(arch, checkpoint)
    layers = {f"layer{i + 1}": str(i) for i in range(4)}
    net = BackboneWithFPN(encoder, layers, STAGE_CHANNELS[arch], 256, extra_blocks=LastLevelMaxPool())
    if freeze:
        net.body.requires_grad_(False)
    return net


def msra_fill(conv: nn.Conv2d) -> nn.Conv2d:
    """Caffe2's MSRAFill, detectron2's ``c2_msra_fill`` (He et al. 2015): weights drawn from
    N(0, 2 / fan_out), fan_out = out_channels x k_h x k_w (``kaiming_normal_``, mode fan_out,
    ReLU gain), bias 0. Returns ``conv``."""
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    return conv


class SemanticBranch(nn.Module):
    """Panoptic FPN's semantic branch (Kirillov et al. 2019) as detectron2's ``SemSegFPNHead``
    builds it with its defaults (CONVS_DIM 128, COMMON_STRIDE 4, NORM "GN"), up to its
    predictor: from each level P2..P5 (stride s = 4, 8, 16, 32) max(1, log2(s / 4)) blocks of
    (3x3 conv without bias, GroupNorm(32), ReLU, then 2x bilinear upsampling below 1/4),
    summed: one map of ``dim`` channels at 1/4 resolution. Convolutions ``msra_fill``-ed,
    GroupNorm at identity (weight 1, bias 0). The predictor (1x1 conv to the classes) is the
    linear probe's (``probe.LinearProbe``), initialised the same way."""

    def __init__(self, in_channels: int = 256, dim: int = 128):
        super().__init__()

        def block(c_in: int, upsample: bool) -> list[nn.Module]:
            layers = [
                msra_fill(nn.Conv2d(c_in, dim, 3, padding=1, bias=False)),
                nn.GroupNorm(32, dim),
                nn.ReLU(inplace=True),
            ]
            return layers + ([nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)] if upsample else [])

        self.levels = nn.ModuleList(
            nn.Sequential(*block(in_channels, level > 0), *[m for k in range(1, level) for m in block(dim, True)])
            for level in range(4)
        )

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        out = self.levels[0](features["0"])
        for level in range(1, 4):
            up = self.levels[level](features[str(level)])
            if up.shape[-2:] != out.shape[-2:]:  # inputs not a multiple of 32: odd level sizes
                up = F.interpolate(up, size=out.shape[-2:], mode="bilinear", align_corners=False)
            out = out + up
        return out


def projection_head(dim: int = 128, hidden: int = 2048) -> nn.Sequential:
    """MoCo-v2's MLP head with its linear layers as 1x1 convolutions (Section 3.4)."""
    return nn.Sequential(nn.Conv2d(dim, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, dim, 1))


class DenseNet(nn.Module):
    """f: image -> 128-d embedding per pixel at 1/4 resolution (Section 2)."""

    def __init__(
        self, arch: str = "resnet50", checkpoint: str | None = None, freeze_encoder: bool = True, dim: int = 128
    ):
        super().__init__()
        self.backbone = backbone(arch, checkpoint, freeze_encoder)
        self.branch = SemanticBranch(256, dim)
        self.freeze_encoder, self.dim = freeze_encoder, dim

    def train(self, mode: bool = True) -> DenseNet:
        super().train(mode)
        if self.freeze_encoder:
            self.backbone.body.eval()  # frozen BatchNorm statistics too
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.branch(self.backbone(images))


def point_features(maps: torch.Tensor, batch: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Embeddings (n, C) of points (pixel coordinates in the input view, pixel centres at
    integers) of images ``batch``: A.1 scales point indices by 1/4 onto the feature map. Cell j
    covers view pixels 4j .. 4j + 3, so its centre is at 4j + 1.5 and a point x lies at
    u = (x - 1.5) / 4 in cell units; the map is sampled there bilinearly (truncating x / 4 would
    shift every point by 1.5 px on average, and a flipped view's points the other way)."""
    corners, au, av = _cells(maps.shape[-2:], x, y)
    return _bilinear([maps[batch, :, v, u] for v, u in corners], au, av)


def point_embeddings(maps: torch.Tensor, head: nn.Module, batch: torch.Tensor, x: torch.Tensor, y: torch.Tensor):
    """``normalize(point_features(normalize(head(maps)), batch, x, y))``: the L2-normalised
    projections of Section 3.4 sampled at the points, normalised again as MoCo normalises last
    (a bilinear mix of unit vectors is shorter than 1: 0.98-0.99 here), so Eq. 1's similarities
    are cosines. Computed on the four cells around each point only: the head is per cell (1x1
    convolutions) and the normalisation too, so these are the same values as projecting the
    whole map, at a fraction of the cost where a batch's points touch few of its cells; where
    they touch many (``projects_cells``), the whole map is projected."""
    if projects_cells(len(x), maps.shape[0] * maps.shape[2] * maps.shape[3]):
        return F.normalize(embeddings_from_cells(maps, head, batch, x, y), dim=1)
    return F.normalize(point_features(F.normalize(head(maps), dim=1), batch, x, y), dim=1)


def embeddings_from_cells(maps: torch.Tensor, head: nn.Module, batch: torch.Tensor, x: torch.Tensor, y: torch.Tensor):
    """``point_embeddings``' four-cell path: each point's four cells projected and normalised,
    then interpolated bilinearly."""
    corners, au, av = _cells(maps.shape[-2:], x, y)
    cells = torch.cat([maps[batch, :, v, u] for v, u in corners])  # (4n, C): one head call for all four
    projected = F.normalize(head(cells[:, :, None, None])[:, :, 0, 0], dim=1)
    return _bilinear(projected.chunk(4), au, av)


def projects_cells(points: int, cells: int) -> bool:
    """Whether ``point_embeddings`` projects the 4 cells around each of ``points`` points rather
    than all ``cells`` cells of the maps: below 40 % of them. Measured (bench/pixel_step.py,
    docs/measurements.md): 15 % of the cells took 0.41x the time of the whole map, 33 % 0.65x,
    44 % 1.08x (gathering and scattering cells costs more than projecting them)."""
    return 4 * points < 0.4 * cells


def _cells(size: tuple[int, int], x: torch.Tensor, y: torch.Tensor):
    """The four feature cells (v, u) around each point, in the order (v0, u0), (v0, u1),
    (v1, u0), (v1, u1), and the point's fractional offsets (au, av) from (u0, v0), (n, 1)."""
    h, w = size
    u = ((x - (STRIDE - 1) / 2) / STRIDE).clamp(0, w - 1)
    v = ((y - (STRIDE - 1) / 2) / STRIDE).clamp(0, h - 1)
    u0, v0 = u.floor().long().clamp(max=max(w - 2, 0)), v.floor().long().clamp(max=max(h - 2, 0))
    u1, v1 = (u0 + 1).clamp(max=w - 1), (v0 + 1).clamp(max=h - 1)
    return [(v0, u0), (v0, u1), (v1, u0), (v1, u1)], (u - u0).unsqueeze(1), (v - v0).unsqueeze(1)


def _bilinear(corners, au: torch.Tensor, av: torch.Tensor) -> torch.Tensor:
    """Bilinear interpolation of the values (n, C) at the four cells of ``_cells``."""
    top = corners[0] * (1 - au) + corners[1] * au
    bottom = corners[2] * (1 - au) + corners[3] * au
    return top * (1 - av) + bottom * av


class Pretext(NamedTuple):
    """Eq. 1 measured on held-out point pairs, which point of the key view (``pretext``)."""

    infonce: float  # the mean of Eq. 1 over the points
    chance: float  # its value for embeddings that ignore the point: the mean log(1 + negatives)
    cos_gap: float  # mean cosine of a positive pair minus mean cosine of a negative pair
    points: int  # points with at least one negative


#: Key points closer than this to the positive's (px of the key view, two feature cells) are no
#: negatives of the held-out pretext: a smooth dense embedding cannot, and need not, tell them apart.
NEAR = 2 * STRIDE


@torch.no_grad()
def pretext(q: torch.Tensor, k: torch.Tensor, image: torch.Tensor, key_xy: torch.Tensor, temperature: float) -> Pretext:
    """Eq. 1 as a test of correspondence on a fixed set of point pairs: query q_i against its key
    k_i and, as negatives, the keys k_j of the other points of the same key view at least NEAR px
    from k_i's point (N_i = {j : image_j = image_i, |p_j - p_i| >= NEAR}, p the key points),

        L = mean_i -log exp(q_i.k_i / T) / (exp(q_i.k_i / T) + sum_{j in N_i} exp(q_i.k_j / T)),

    with the chance level mean_i log(1 + |N_i|) (all similarities equal) and the cosine gap
    mean_i q_i.k_i - mean_{i, j in N_i} q_i.k_j, over the points with a negative. Other
    images' keys are no negatives here: a model can tell images apart without any
    correspondence (the shuffled control learns exactly that), and only the points of the same
    view ask which point it is. q, k (n, C) L2-normalised, key_xy (n, 2)."""
    similarity = q.float() @ k.float().T
    negative = (image[:, None] == image[None, :]) & (torch.cdist(key_xy.float(), key_xy.float()) >= NEAR)
    counts = negative.sum(dim=1)
    scored = counts > 0
    if not scored.any():
        raise ValueError(f"held-out pretext: none of {len(q)} points has another point of its view {NEAR} px away")
    logits = torch.where(negative, similarity / temperature, float("-inf"))
    logits.diagonal().copy_(similarity.diagonal() / temperature)  # the positive joins its negatives
    infonce = torch.logsumexp(logits, dim=1) - logits.diagonal()
    return Pretext(
        infonce=float(infonce[scored].mean()),
        chance=float(torch.log1p(counts[scored].float()).mean()),
        cos_gap=float(similarity.diagonal()[scored].mean() - similarity[negative].mean()),
        points=int(scored.sum()),
    )


def info_nce(
    q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, temperature: float, count: float | None = None
) -> torch.Tensor:
    """Eq. 1: -log exp(q.k / T) / (exp(q.k / T) + sum_j exp(q.n_j / T)), the positive among
    the denominators; q, k (n, C) and the queue's negatives (C, K), all L2-normalised. Summed
    over the n points and divided by ``count`` (default n: the mean)."""
    if len(q) == 0:  # no point survived the crops: a zero loss, still connected (DDP all-reduces)
        return q.sum() * 0.0
    positive = (q * k).sum(dim=1, keepdim=True)
    negative = q @ queue
    logits = torch.cat([positive, negative], dim=1) / temperature
    total = F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long, device=q.device), reduction="sum")
    return total / (len(q) if count is None else count)


class MoCo(nn.Module):
    """MoCo's machinery (He et al. 2020; MoCo-v2, Chen et al. 2020b), shared by the pixel and
    the image-level method: a query network ``query`` (trained), its momentum copy ``key``, and
    a queue of ``queue_size`` L2-normalised keys, the negatives of Eq. 1. Modules of ``query``
    shared with ``key`` (``share``: a frozen encoder, whose momentum copy would equal it) are one
    module in both."""

    def __init__(
        self,
        query: nn.Module,
        dim: int,
        queue_size: int,
        momentum: float,
        temperature: float,
        share=lambda query, key: None,
    ):
        super().__init__()
        self.query = query
        self.key = copy.deepcopy(query)
        share(query, self.key)
        self.key.requires_grad_(False)
        self.momentum, self.temperature = momentum, temperature
        self.register_buffer("queue", F.normalize(torch.randn(dim, queue_size), dim=0))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def momentum_update(self) -> None:
        """key <- m * key + (1 - m) * query, for every trainable parameter."""
        for q, k in zip(self.query.parameters(), self.key.parameters()):
            if q.requires_grad:
                k.mul_(self.momentum).add_(q.detach(), alpha=1 - self.momentum)

    @torch.no_grad()
    def queue_similarity(self) -> float:
        """The collapse monitor: the mean cosine between two different keys of the queue,
        (|sum_j k_j|^2 - K) / (K (K - 1)) for K unit keys (the sum of all K^2 dot products
        less the K self-products), 1 when every embedding is the same vector, about 0 when they
        spread over the sphere."""
        size = self.queue.shape[1]
        total = self.queue.float().sum(dim=1)
        return float(((total @ total) - size) / (size * (size - 1))) if size > 1 else 1.0

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Replace the oldest keys (ring buffer); keys (n, C)."""
        size = self.queue.shape[1]
        keys = keys[-size:]
        idx = (self.queue_ptr + torch.arange(len(keys), device=keys.device)) % size
        self.queue[:, idx] = keys.T.to(self.queue.dtype)
        self.queue_ptr.copy_((self.queue_ptr + len(keys)) % size)


def _share_frozen_encoder(query: nn.ModuleDict, key: nn.ModuleDict) -> None:
    if query["net"].freeze_encoder:
        key["net"].backbone.body = query["net"].backbone.body


class PointBatch(NamedTuple):
    """A batch of view pairs and its point pairs, what ``PixelMoCo`` trains on: (xa, ya) in
    ``view_a[image]`` <-> (xb, yb) in ``view_b[image]``, in view pixels."""

    view_a: torch.Tensor
    view_b: torch.Tensor
    image: torch.Tensor
    xa: torch.Tensor
    ya: torch.Tensor
    xb: torch.Tensor
    yb: torch.Tensor

    def to(self, device: torch.device) -> PointBatch:
        """On ``device``, the views channels-last (NHWC), as the pretraining model's weights."""
        views = (t.to(device, non_blocking=True, memory_format=torch.channels_last) for t in self[:2])
        return PointBatch(*views, *(t.to(device, non_blocking=True) for t in self[2:]))

    def points(self, keep: torch.Tensor) -> PointBatch:
        """The same views with the point pairs ``keep`` (indices) only."""
        return PointBatch(self.view_a, self.view_b, *(t[keep] for t in self[2:]))


class PixelMoCo(MoCo):
    """Pixel-level MoCo-v2 (Section 3.4): query network f + head (trained), key network (momentum
    copy of the trainable parts), queue of ``queue_size`` pixel keys."""

    def __init__(
        self,
        net: DenseNet,
        dim: int = 128,
        hidden: int = 2048,
        queue_size: int = 65536,
        momentum: float = 0.999,
        temperature: float = 0.2,
    ):
        super().__init__(
            nn.ModuleDict({"net": net, "head": projection_head(dim, hidden)}),
            dim,
            queue_size,
            momentum,
            temperature,
            share=_share_frozen_encoder,
        )

    def queries(self, batch: PointBatch) -> torch.Tensor:
        """The query network's embeddings (n, dim) of the points (xa, ya) of view a."""
        return point_embeddings(self.query["net"](batch.view_a), self.query["head"], batch.image, batch.xa, batch.ya)

    @torch.no_grad()
    def keys(self, batch: PointBatch) -> torch.Tensor:
        """The key network's embeddings (n, dim) of the points (xb, yb) of view b."""
        return point_embeddings(self.key["net"](batch.view_b), self.key["head"], batch.image, batch.xb, batch.yb)

    def forward(self, batch: PointBatch) -> torch.Tensor:
        """Eq. 1's loss for the point pairs of ``batch``: a query per point of view a, its
        positive the key of the same point in view b, the queue's keys its negatives.

        Under DDP, which averages the processes' gradients, processes may hold different
        numbers of points: each returns the sum of Eq. 1 over its points divided by the global
        batch's count over the world size, so the gradient is that of Eq. 1's mean over every
        point of the global batch, as in one process (the returned values average to it)."""
        q = self.queries(batch)
        with torch.no_grad():
            self.momentum_update()
            k = self.keys(batch)
        keys = gather(k)
        world = torch.distributed.get_world_size() if in_process_group() else 1
        loss = info_nce(q, k, self.queue.clone().detach(), self.temperature, count=len(keys) / world)
        self.enqueue(keys)
        return loss


class ImageMoCo(MoCo):
    """Image-level MoCo-v2 (Chen et al. 2020b): the whole ResNet trained, one key per image,
    its ``fc`` MoCo-v2's MLP head (Linear(C, C), ReLU, Linear(C, dim)), as in the official
    code, so ``query``'s state is the ``encoder_q`` of an official checkpoint.

    One process has no other GPUs to shuffle BatchNorm over (MoCo's shuffling BN, Section 3.3
    of He et al. 2020, which keeps the batch statistics from leaking which key is the query's):
    queries and keys are embedded in ``bn_groups`` groups, each with its own batch
    statistics, the keys in a random order, so a query and its key share no statistics."""

    def __init__(
        self,
        arch: str,
        dim: int = 128,
        queue_size: int = 65536,
        momentum: float = 0.999,
        temperature: float = 0.2,
        bn_groups: int = 1,
    ):
        encoder = getattr(torchvision.models, arch)(weights=None)
        channels = encoder.fc.in_features
        encoder.fc = nn.Sequential(nn.Linear(channels, channels), nn.ReLU(inplace=True), nn.Linear(channels, dim))
        super().__init__(encoder, dim, queue_size, momentum, temperature)
        self.bn_groups = bn_groups

    def _embed(self, net: nn.Module, images: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
        """L2-normalised embeddings of ``images``, computed group by group over ``order``."""
        out = torch.cat([net(images[group]) for group in order.chunk(self.bn_groups)])
        return F.normalize(out[torch.argsort(order)], dim=1)  # back to the images' order

    def forward(
        self, view_q: torch.Tensor, view_k: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Eq. 1 with one query and one key per image (views of the same image are positives)."""
        n = len(view_q)
        q = self._embed(self.query, view_q, torch.arange(n, device=view_q.device))
        with torch.no_grad():
            self.momentum_update()
            k = self._embed(self.key, view_k, torch.randperm(n, generator=generator).to(view_k.device))
        loss = info_nce(q, k, self.queue.clone().detach(), self.temperature)
        self.enqueue(k)
        return loss

    def official_state(self) -> dict[str, torch.Tensor]:
        """The query encoder under the official checkpoint's names (``module.encoder_q.*``),
        which ``load_moco_encoder`` reads."""
        return {f"module.encoder_q.{k}": v for k, v in self.query.state_dict().items()}


def in_process_group() -> bool:
    """Whether this process is one of a DDP process group."""
    return torch.distributed.is_available() and torch.distributed.is_initialized()


@torch.no_grad()
def gather(keys: torch.Tensor) -> torch.Tensor:
    """Keys of every DDP process, concatenated in rank order (each process may have a different
    number of points), so every process enqueues the same keys; the keys as-is without DDP."""
    if not in_process_group():
        return keys
    world = torch.distributed.get_world_size()
    count = torch.tensor([len(keys)], device=keys.device)
    counts = [torch.zeros_like(count) for _ in range(world)]
    torch.distributed.all_gather(counts, count)
    most = int(max(c.item() for c in counts))
    padded = torch.zeros(most, keys.shape[1], device=keys.device, dtype=keys.dtype)
    padded[: len(keys)] = keys
    parts = [torch.zeros_like(padded) for _ in range(world)]
    torch.distributed.all_gather(parts, padded)
    return torch.cat([part[: int(c.item())] for part, c in zip(parts, counts)])


def learned(state: dict, frozen: bool) -> dict:
    """``state`` (of a PixelMoCo, its query network or a DenseNet; or any dict keyed by their
    weights' names) without the encoder's weights when it is frozen: those are not learned but
    rebuilt from the config (its encoder checkpoint), so model files and checkpoints omit them."""
    return {k: v for k, v in state.items() if not (frozen and "backbone.body." in k)}


def trainable_state(model: PixelMoCo) -> dict[str, torch.Tensor]:
    """What pretraining learns, for model.pt: decoder (FPN + semantic branch) and head, and the
    encoder too when it was not frozen."""
    return learned(model.query.state_dict(), model.query["net"].freeze_encoder)
