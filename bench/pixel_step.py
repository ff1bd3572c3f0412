"""The pretraining step's two measured choices (``pico.learn.model``), on this machine's CPU:

1. Section 3.4's projection head on the points only: ``point_embeddings`` projects the four
   feature cells around each point instead of the whole 1/4-resolution map (the same values:
   the head and the normalisation act per cell). Timed forward + backward of the head alone,
   at the demo's map (4 images of 96 px: 24x24 cells) and at the paper's per-image ratio
   (224 px crops, 56x56 cells, 256 points per image; 16 images instead of 256 so it fits a
   CPU), against projecting the whole map and sampling it (``point_features``).
2. Channels-last (NHWC) weights and views for the whole training step (ResNet-18 encoder
   frozen, FPN, semantic branch, head; the demo's 4 views of 96 px, 85 point pairs: the
   mini-reproduction's median), against the default contiguous (NCHW) layout.

Wall clock, one thread (as a pretraining job beside another on 2 cores), mean of ``--repeat``
after one warm-up; prints a Markdown table.

    .venv/bin/python bench/pixel_step.py [--repeat 8]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from pico.learn import model


def seconds(fn, repeat: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def head_row(images: int, cells: int, points: int, repeat: int) -> tuple:
    g = torch.Generator().manual_seed(0)
    head = model.projection_head(128, 2048)
    maps = torch.randn(images, 128, cells, cells, generator=g, requires_grad=True)
    batch = torch.randint(0, images, (points,), generator=g)
    x, y = (torch.rand(points, generator=g) * (4 * cells - 1) for _ in range(2))

    def whole():
        model.point_features(F.normalize(head(maps), dim=1), batch, x, y).sum().backward()

    def corners():  # the four-cell path, whatever model.projects_cells would choose here
        model.embeddings_from_cells(maps, head, batch, x, y).sum().backward()

    return images, f"{cells}x{cells}", points, seconds(whole, repeat), seconds(corners, repeat)


def step_seconds(channels_last: bool, repeat: int, points: int = 85) -> float:
    torch.manual_seed(0)
    moco = model.PixelMoCo(model.DenseNet("resnet18", None, freeze_encoder=True), queue_size=4096, momentum=0.99)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    moco = moco.to(memory_format=layout)
    optimizer = torch.optim.SGD([p for p in moco.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    g = torch.Generator().manual_seed(1)
    views = [torch.randn(4, 3, 96, 96, generator=g).contiguous(memory_format=layout) for _ in range(2)]
    image = torch.randint(0, 4, (points,), generator=g)
    batch = model.PointBatch(*views, image, *(torch.rand(points, generator=g) * 95 for _ in range(4)))

    def step():
        loss = moco(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return seconds(step, repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(
        "| head on | images | cells | points | 4 x points / cells | whole map ms | four cells ms | four cells / whole |"
    )
    print("|---|--:|---|--:|--:|--:|--:|--:|")
    for images, cells, points in ((4, 24, 85), (4, 24, 256), (16, 56, 16 * 256)):
        row = head_row(images, cells, points, args.repeat)
        name = "demo" if cells == 24 else "paper ratio"
        share = 4 * points / (images * cells * cells)
        print(
            f"| {name} | {row[0]} | {row[1]} | {row[2]:,} | {share:.0%} | {row[3] * 1e3:.1f} | {row[4] * 1e3:.1f} "
            f"| {row[4] / row[3]:.2f} |"
        )
    print()
    nchw, nhwc = step_seconds(False, args.repeat), step_seconds(True, args.repeat)
    print("| training step (demo size, 85 pairs) | NCHW ms | NHWC (channels-last) ms | NHWC / NCHW |")
    print("|---|--:|--:|--:|")
    print(f"| ResNet-18 frozen + FPN + branch + head | {nchw * 1e3:.0f} | {nhwc * 1e3:.0f} | {nhwc / nchw:.2f} |")


if __name__ == "__main__":
    main()
