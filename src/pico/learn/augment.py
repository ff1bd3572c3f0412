"""MoCo-v2's augmentations for one view (Chen et al. 2020b), with the geometric part applied to
point coordinates too (Section 3.4, A.1): random resized crop (scale 0.2-1) and horizontal
flip move the points; colour jitter (0.4, 0.4, 0.4, 0.1; p 0.8), grayscale (p 0.2) and
Gaussian blur (sigma 0.1-2; p 0.5) do not. Points that fall outside the crop are dropped.

Coordinates are pixel coordinates with pixel centres at integers (as in the tracks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torchvision.transforms.v2.functional as TF

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


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
    else:  # fall back to a central crop
        h, w = height, width
        top, left = 0, 0
    flip = bool(torch.rand(1, generator=g) < 0.5)
    return Crop(top, left, h, w, size, flip)


def photometric(image: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Colour jitter, grayscale and blur of a float image (3, H, W) in [0, 1]."""
    if torch.rand(1, generator=g) < 0.8:
        b, c, s = (1 + 0.4 * (2 * torch.rand(3, generator=g) - 1)).tolist()
        hue = 0.1 * (2 * torch.rand(1, generator=g).item() - 1)
        for k in torch.randperm(4, generator=g).tolist():
            image = [
                lambda im: TF.adjust_brightness(im, b),
                lambda im: TF.adjust_contrast(im, c),
                lambda im: TF.adjust_saturation(im, s),
                lambda im: TF.adjust_hue(im, hue),
            ][k](image)
    if torch.rand(1, generator=g) < 0.2:
        image = TF.rgb_to_grayscale(image, num_output_channels=3)
    if torch.rand(1, generator=g) < 0.5:
        sigma = 0.1 + 1.9 * torch.rand(1, generator=g).item()
        kernel = 2 * math.ceil(3 * sigma) + 1
        image = TF.gaussian_blur(image, [kernel, kernel], [sigma, sigma])
    return image.clamp(0, 1)


def view(image: torch.Tensor, crop: Crop, g: torch.Generator, colour: bool = True) -> torch.Tensor:
    """One normalised view (3, size, size) of a uint8 image (3, H, W) under ``crop``."""
    out = TF.resized_crop(image, crop.top, crop.left, crop.height, crop.width, [crop.size, crop.size], antialias=True)
    if crop.flip:
        out = TF.horizontal_flip(out)
    out = out.float() / 255
    if colour:
        out = photometric(out, g)
    return (out - MEAN) / STD
