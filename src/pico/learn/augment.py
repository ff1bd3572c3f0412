"""MoCo-v2's augmentations for one view (Chen et al. 2020b), with the geometric part applied to
point coordinates too (Section 3.4, A.1): random resized crop (scale 0.2-1) and horizontal
flip move the points; colour jitter (0.4, 0.4, 0.4, 0.1; p 0.8), grayscale (p 0.2) and
Gaussian blur (sigma 0.1-2; p 0.5) do not. Points that fall outside the crop are dropped.

The work is split where it is cheapest (issue 13): a data-loader worker decodes, crops and
flips (``view``, uint8) and draws the photometric parameters (``draw_colour``) from the same
seeded generator as the crop, and the training process applies them to the whole batch on its
device (``colour``), with the arithmetic of ``torchvision.transforms.v2.functional``'s
``adjust_brightness/contrast/saturation/hue``, ``rgb_to_grayscale`` and ``gaussian_blur``
(the same values to float rounding, tested).

Coordinates are pixel coordinates with pixel centres at integers (as in the tracks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
GRAY = (0.2989, 0.587, 0.114)  # ITU-R 601 luma, torchvision's rgb_to_grayscale
MAX_SIGMA = 2.0
MAX_RADIUS = math.ceil(3 * MAX_SIGMA)  # the blur's kernel is 2 * ceil(3 sigma) + 1 taps


@dataclass(frozen=True)
class Crop:
    """A crop box in source pixels (top, left, height, width), resized to ``size`` x ``size``,
    then flipped horizontally or not."""

    top: int
    left: int
    height: int
    width: int
    size: int
    flip: bool

    def map_points(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Source coordinates -> view coordinates, and which points lie inside the view."""
        vx = (x - self.left + 0.5) * (self.size / self.width) - 0.5
        vy = (y - self.top + 0.5) * (self.size / self.height) - 0.5
        if self.flip:
            vx = self.size - 1 - vx
        inside = (vx >= -0.5) & (vx < self.size - 0.5) & (vy >= -0.5) & (vy < self.size - 0.5)
        return vx, vy, inside


def random_crop(height: int, width: int, size: int, g: torch.Generator, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3)) -> Crop:
    """torchvision's RandomResizedCrop parameters, drawn from ``g``; and a fair-coin flip."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * (scale[0] + (scale[1] - scale[0]) * torch.rand(1, generator=g).item())
        aspect = math.exp(log_ratio[0] + (log_ratio[1] - log_ratio[0]) * torch.rand(1, generator=g).item())
        w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (1,), generator=g))
            left = int(torch.randint(0, width - w + 1, (1,), generator=g))
            break
    else:
        h, w = fallback_size(height, width, ratio)
        top, left = (height - h) // 2, (width - w) // 2
    flip = bool(torch.rand(1, generator=g) < 0.5)
    return Crop(top, left, h, w, size, flip)


def fallback_size(height: int, width: int, ratio: tuple[float, float]) -> tuple[int, int]:
    """RandomResizedCrop's crop (h, w) when ten draws fail: the whole image clamped to the
    allowed aspect ratios, w / h in [ratio[0], ratio[1]], taken at the centre (a 16:9 frame
    gives a centred 4:3 crop of its full height, a 9:16 one a centred 3:4 crop of its width)."""
    aspect = width / height
    if aspect < min(ratio):
        return round(width / min(ratio)), width
    if aspect > max(ratio):
        return height, round(height * max(ratio))
    return height, width


def view(image: torch.Tensor, crop: Crop) -> torch.Tensor:
    """The geometric part of one view: ``crop`` of a uint8 image (3, H, W), resized
    (antialiased) and flipped, still uint8 (3, size, size)."""
    out = TF.resized_crop(image, crop.top, crop.left, crop.height, crop.width, [crop.size, crop.size], antialias=True)
    return TF.horizontal_flip(out) if crop.flip else out


class Colour(NamedTuple):
    """The photometric draws of a batch of views, one row each: ``factors`` (B, 4) brightness,
    contrast, saturation and hue, applied in the order ``order`` (B, 4) where ``jitter`` (B,);
    ``grayscale`` (B,); ``sigma`` (B,) of the blur, 0 for none."""

    jitter: torch.Tensor
    factors: torch.Tensor
    order: torch.Tensor
    grayscale: torch.Tensor
    sigma: torch.Tensor

    @classmethod
    def cat(cls, draws: list[Colour]) -> Colour:
        """One batch of the draws of several."""
        return cls(*(torch.cat(field) for field in zip(*draws)))

    def to(self, device: torch.device) -> Colour:
        return Colour(*(t.to(device, non_blocking=True) for t in self))

    def subset(self, keep: torch.Tensor) -> Colour:
        return Colour(*(t[keep] for t in self))


def draw_colour(g: torch.Generator) -> Colour:
    """MoCo-v2's photometric parameters for one view, drawn from ``g`` as torchvision's
    ColorJitter(0.4, 0.4, 0.4, 0.1) with p 0.8, RandomGrayscale(0.2) and GaussianBlur(sigma
    0.1-2) with p 0.5 draw them."""
    jitter = bool(torch.rand(1, generator=g) < 0.8)
    factors, order = torch.tensor([1.0, 1.0, 1.0, 0.0]), torch.arange(4)
    if jitter:
        factors[:3] = 1 + 0.4 * (2 * torch.rand(3, generator=g) - 1)
        factors[3] = 0.1 * (2 * torch.rand(1, generator=g).item() - 1)
        order = torch.randperm(4, generator=g)
    grayscale = bool(torch.rand(1, generator=g) < 0.2)
    sigma = 0.1 + 1.9 * torch.rand(1, generator=g).item() if torch.rand(1, generator=g) < 0.5 else 0.0
    return Colour(torch.tensor([jitter]), factors[None], order[None], torch.tensor([grayscale]), torch.tensor([sigma]))


def luma(x: torch.Tensor) -> torch.Tensor:
    """Y = 0.2989 R + 0.587 G + 0.114 B of images (B, 3, H, W), as (B, 1, H, W)."""
    return (x[:, 0] * GRAY[0] + x[:, 1] * GRAY[1] + x[:, 2] * GRAY[2])[:, None]


def blend(x: torch.Tensor, other: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    """ratio x + (1 - ratio) other, clamped to [0, 1]; ``ratio`` one per image (B,)."""
    ratio = ratio.view(-1, 1, 1, 1)
    return (ratio * x + (1 - ratio) * other).clamp(0, 1)


def shift_hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate the HSV hue of images (B, 3, H, W) in [0, 1] by ``shift`` (B,) turns.

    H = (1/6) [(G - B)/C mod 6 | (B - R)/C + 2 | (R - G)/C + 4] where max(R, G, B) is R | G | B
    (R first on ties), C = max - min, S = C / V, V = max; back to RGB by channel n in (5, 3, 1):
    V - V S clamp(min(k, 4 - k), 0, 1) with k = (n + 6 H') mod 6, H' = H + shift mod 1.
    """
    r, g, b = x.unbind(1)
    v, low = x.amax(1), x.amin(1)
    c = v - low
    safe = torch.where(c > 0, c, torch.ones_like(c))  # grey pixels: any hue, S = 0
    h = torch.where(v == r, ((g - b) / safe) % 6, torch.where(v == g, (b - r) / safe + 2, (r - g) / safe + 4))
    h = torch.where(c > 0, h, torch.zeros_like(h)) / 6
    h = (h + shift.view(-1, 1, 1)) % 1
    # all three channels at once: k = (n + 6H') mod 6 for n = 5, 3, 1 (R, G, B)
    k = (torch.tensor([5.0, 3.0, 1.0], device=x.device).view(1, 3, 1, 1) + 6 * h[:, None]) % 6
    return v[:, None] - c[:, None] * torch.minimum(k, 4 - k).clamp(0, 1)


def blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Gaussian blur of images (B, 3, H, W), each with its ``sigma`` (B,): taps
    exp(-j^2 / 2 sigma^2), |j| <= ceil(3 sigma), normalised, reflect padding, separable.

    One grouped convolution for all: every kernel has MAX_RADIUS taps a side, those beyond an
    image's own radius zero, which gives the same sums as its own shorter kernel."""
    n, channels, height, width = x.shape
    j = torch.arange(-MAX_RADIUS, MAX_RADIUS + 1, device=x.device, dtype=x.dtype)
    radius = torch.ceil(3 * sigma).view(-1, 1)
    taps = torch.exp(-(j**2) / (2 * sigma.view(-1, 1) ** 2)) * (j.abs() <= radius)
    taps = (taps / taps.sum(1, keepdim=True)).repeat_interleave(channels, 0)  # one kernel per image channel
    out = F.pad(x, [MAX_RADIUS] * 4, mode="reflect").reshape(1, n * channels, height + 2 * MAX_RADIUS, -1)
    out = F.conv2d(out, taps.view(-1, 1, 1, 2 * MAX_RADIUS + 1), groups=n * channels)
    out = F.conv2d(out, taps.view(-1, 1, 2 * MAX_RADIUS + 1, 1), groups=n * channels)
    return out.view(n, channels, height, width)


def jitter_op(x: torch.Tensor, op: int, factor: torch.Tensor) -> torch.Tensor:
    """ColorJitter's ``op`` (0 brightness, 1 contrast, 2 saturation, 3 hue) with one factor per image."""
    if op == 0:
        return (x * factor.view(-1, 1, 1, 1)).clamp(0, 1)
    if op == 1:
        return blend(x, luma(x).mean((1, 2, 3), keepdim=True), factor)
    if op == 2:
        return blend(x, luma(x), factor)
    return shift_hue(x, factor)


def colour(views: torch.Tensor, draws: Colour) -> torch.Tensor:
    """The photometric part of MoCo-v2 on a batch of uint8 views (B, 3, S, S), on their device,
    then ImageNet normalisation: float views (B, 3, S, S) for the network."""
    x = views.float() / 255
    for step in range(4):  # the jitter's four operations, each image in its own order
        for op in range(4):
            (chosen,) = torch.nonzero(draws.jitter & (draws.order[:, step] == op), as_tuple=True)
            if len(chosen):
                x[chosen] = jitter_op(x[chosen], op, draws.factors[chosen, op])
    (gray,) = torch.nonzero(draws.grayscale, as_tuple=True)
    x[gray] = luma(x[gray]).expand(-1, 3, -1, -1)
    (blurred,) = torch.nonzero(draws.sigma > 0, as_tuple=True)
    if len(blurred):
        x[blurred] = blur(x[blurred], draws.sigma[blurred])
    return (x.clamp(0, 1) - MEAN.to(x.device)) / STD.to(x.device)
