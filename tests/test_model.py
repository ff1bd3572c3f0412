"""Section 2/3.4: the dense network, pixel MoCo (Eq. 1), and augmentations that move points."""

import math

import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF

from pico.evaluation import probe
from pico.learn import augment, model


@pytest.fixture(scope="module")
def moco():
    torch.manual_seed(0)
    return model.PixelMoCo(model.DenseNet("resnet18", None, freeze_encoder=True), hidden=64, queue_size=8, momentum=0.9)


def test_dense_output_is_128d_at_quarter_resolution(moco):
    out = moco.query["net"](torch.randn(2, 3, 64, 96))
    assert out.shape == (2, 128, 16, 24)


def test_info_nce_equals_a_hand_computed_value():
    q = F.normalize(torch.tensor([[1.0, 0.0], [0.6, 0.8]]), dim=1)
    k = F.normalize(torch.tensor([[0.8, 0.6], [0.0, 1.0]]), dim=1)
    queue = F.normalize(torch.tensor([[1.0, 0.0, -1.0], [0.0, 1.0, 0.0]]), dim=0)
    t = 0.5
    by_hand = 0.0
    for qi, ki in zip(q.tolist(), k.tolist()):
        pos = math.exp((qi[0] * ki[0] + qi[1] * ki[1]) / t)
        neg = sum(math.exp((qi[0] * queue[0, j].item() + qi[1] * queue[1, j].item()) / t) for j in range(3))
        by_hand += -math.log(pos / (pos + neg)) / 2
    assert model.info_nce(q, k, queue, t).item() == pytest.approx(by_hand, rel=1e-6)


def test_only_decoder_and_head_learn_when_the_encoder_is_frozen(moco):
    images = torch.randn(2, 3, 64, 64)
    pts = torch.tensor([5.0, 30.0, 60.0])
    moco.zero_grad()
    moco(model.PointBatch(images, images, torch.tensor([0, 1, 1]), pts, pts, pts, pts)).backward()
    grads = {n for n, p in moco.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert grads and all(n.startswith(("query.net.backbone.fpn", "query.net.branch", "query.head")) for n in grads)
    assert not any(p.requires_grad for n, p in moco.named_parameters() if ".body." in n or n.startswith("key."))


def test_a_frozen_encoder_is_one_module_and_stored_nowhere(moco):
    assert moco.key["net"].backbone.body is moco.query["net"].backbone.body
    saved = model.learned(moco.state_dict(), frozen=True)
    assert not any("backbone.body." in k for k in saved) and any(k.startswith("key.net.branch.") for k in saved)
    assert model.learned(moco.state_dict(), frozen=False).keys() == moco.state_dict().keys()
    trained = model.PixelMoCo(model.DenseNet("resnet18", None, freeze_encoder=False), hidden=64, queue_size=8)
    assert trained.key["net"].backbone.body is not trained.query["net"].backbone.body
    assert any(k.startswith("net.backbone.body.") for k in model.trainable_state(trained))


def test_momentum_update_and_queue_wrap_around(moco):
    with torch.no_grad():
        for p in moco.query.parameters():
            p.add_(1.0)
    before = [k.clone() for k in moco.key.parameters()]
    moco.momentum_update()
    for (name, q), k0, k1 in zip(moco.query.named_parameters(), before, moco.key.parameters()):
        expected = 0.9 * k0 + 0.1 * q if q.requires_grad else k0
        torch.testing.assert_close(k1, expected, msg=name)
    moco.queue_ptr.zero_()
    keys = F.normalize(torch.randn(5, 128), dim=1)
    moco.enqueue(keys)
    moco.enqueue(keys * -1)  # 10 keys into a queue of 8: wraps, ptr = 2
    torch.testing.assert_close(moco.queue[:, :2], -keys[3:].T)
    torch.testing.assert_close(moco.queue[:, 5:8], -keys[:3].T)
    torch.testing.assert_close(moco.queue[:, 2:5], keys[2:].T)
    assert moco.queue_ptr.item() == 2


def test_a_marked_pixel_lands_where_its_mapped_coordinate_says():
    g = torch.Generator().manual_seed(1)
    image = torch.zeros(3, 90, 120, dtype=torch.uint8)
    for seed in range(20):
        g.manual_seed(seed)
        crop = augment.random_crop(90, 120, 64, g)
        x, y = torch.tensor([float(crop.left + crop.width // 3)]), torch.tensor([float(crop.top + crop.height // 2)])
        marked = image.clone()
        marked[:, int(y), int(x)] = 255
        out = augment.view(marked, crop)
        vx, vy, inside = crop.map_points(x, y)
        assert inside.all()
        peak = torch.nonzero(out[0] == out[0].max())[0]
        assert abs(peak[0].item() - vy.item()) <= 1 and abs(peak[1].item() - vx.item()) <= 1, (seed, peak, vx, vy)
    far = crop.map_points(torch.tensor([crop.left - 5.0]), torch.tensor([float(crop.top)]))[2]
    assert not far.any()


def torchvision_colour(image: torch.Tensor, draw: augment.Colour) -> torch.Tensor:
    """MoCo-v2's photometric part on one uint8 image the way torchvision applies it, one
    ``torchvision.transforms.v2.functional`` call at a time: the reference for the batched one."""
    x = image.float() / 255
    b, c, s, hue = draw.factors[0].tolist()
    jitter = [
        lambda im: TF.adjust_brightness(im, b),
        lambda im: TF.adjust_contrast(im, c),
        lambda im: TF.adjust_saturation(im, s),
        lambda im: TF.adjust_hue(im, hue),
    ]
    if draw.jitter.item():
        for k in draw.order[0].tolist():
            x = jitter[k](x)
    if draw.grayscale.item():
        x = TF.rgb_to_grayscale(x, num_output_channels=3)
    sigma = draw.sigma.item()
    if sigma > 0:
        kernel = 2 * math.ceil(3 * sigma) + 1
        x = TF.gaussian_blur(x, [kernel, kernel], [sigma, sigma])
    return (x.clamp(0, 1) - augment.MEAN) / augment.STD


def test_the_batched_colour_is_torchvisions_per_image_colour():
    """``augment.colour`` on a batch of 48 views, each with its own seeded draw (every
    operation, order, grayscale and blur occurring), equals torchvision's per-image functional
    ops to float rounding; identity draws give the normalised view itself."""
    g = torch.Generator().manual_seed(0)
    smooth = F.interpolate(torch.rand(48, 3, 6, 6, generator=g), size=40, mode="bilinear", align_corners=False)
    images = (255 * smooth).round().to(torch.uint8)
    images[:4, :, :20] = 128  # grey pixels: no hue
    draws = [augment.draw_colour(g) for _ in images]
    batch = augment.Colour.cat(draws)
    assert batch.jitter.any() and (~batch.jitter).any() and batch.grayscale.any() and (batch.sigma > 0).any()
    assert len({tuple(o) for o in batch.order[batch.jitter].tolist()}) > 10
    expected = torch.stack([torchvision_colour(image, draw) for image, draw in zip(images, draws)])
    torch.testing.assert_close(augment.colour(images, batch), expected, atol=1e-5, rtol=0)
    identity = augment.Colour(
        torch.zeros(2, dtype=torch.bool),
        torch.tensor([[1.0, 1, 1, 0]] * 2),
        torch.arange(4).repeat(2, 1),
        torch.zeros(2, dtype=torch.bool),
        torch.zeros(2),
    )
    torch.testing.assert_close(
        augment.colour(images[:2], identity), (images[:2].float() / 255 - augment.MEAN) / augment.STD
    )


def test_the_loss_falls_when_overfitting_one_batch(monkeypatch):
    """With the negatives held fixed (a repeated batch would otherwise queue its own keys as
    negatives), optimising one batch of two views drives Eq. 1 down."""
    torch.manual_seed(0)
    moco = model.PixelMoCo(model.DenseNet("resnet18", None, True), hidden=64, queue_size=64, momentum=0.5)
    monkeypatch.setattr(moco, "enqueue", lambda keys: None)
    images = torch.randn(2, 3, 64, 64)
    pts = torch.rand(32) * 63
    batch = torch.arange(32) % 2
    opt = torch.optim.SGD([p for p in moco.parameters() if p.requires_grad], lr=0.5, momentum=0.9)
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = moco(model.PointBatch(images, images.flip(-1), batch, pts, pts, 63 - pts, pts))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


def test_the_semantic_branch_is_detectron2s_sem_seg_fpn_head():
    """Per level P2..P5 (stride 4..32): max(1, log2(stride / 4)) blocks of 3x3 conv (no bias,
    since a norm follows), GroupNorm(32, 128), ReLU, and a 2x bilinear upsampling below 1/4."""
    branch = model.SemanticBranch(256, 128)
    for level, stack in enumerate(branch.levels):
        kinds = [type(m) for m in stack]
        blocks = max(1, level)
        per_block = [torch.nn.Conv2d, torch.nn.GroupNorm, torch.nn.ReLU] + ([torch.nn.Upsample] if level else [])
        assert kinds == per_block * blocks, level
        convs = [m for m in stack if isinstance(m, torch.nn.Conv2d)]
        assert [c.in_channels for c in convs] == [256] + [128] * (blocks - 1)
        assert all(
            c.kernel_size == (3, 3) and c.padding == (1, 1) and c.bias is None and c.out_channels == 128 for c in convs
        )
        assert all(g.num_groups == 32 and g.num_channels == 128 for g in stack if isinstance(g, torch.nn.GroupNorm))
        assert all(
            u.scale_factor == 2 and u.mode == "bilinear" and not u.align_corners
            for u in stack
            if isinstance(u, torch.nn.Upsample)
        )
    features = {str(k): torch.randn(1, 256, 16 >> k, 24 >> k) for k in range(4)}
    assert branch(features).shape == (1, 128, 16, 24)


def excess_kurtosis(w: torch.Tensor) -> float:
    z = (w.flatten().double() - w.double().mean()) / w.double().std()
    return (z**4).mean().item() - 3


def test_decoder_initialisation_is_detectron2s():
    """SemSegFPNHead's convs and predictor (here the probe's classifier): c2_msra_fill, i.e.
    N(0, 2 / fan_out), zero bias; GroupNorm at identity. The FPN (torchvision's): c2_xavier_fill,
    i.e. U(-sqrt(3 / fan_in), sqrt(3 / fan_in)), zero bias, as detectron2's FPN."""
    torch.manual_seed(0)
    branch = model.SemanticBranch(256, 128)
    convs = [m for m in branch.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 1 + 1 + 2 + 3
    for conv in convs:
        w = conv.weight
        fan_out = conv.out_channels * w.shape[2] * w.shape[3]
        assert w.std().item() == pytest.approx(math.sqrt(2 / fan_out), rel=0.02)
        assert abs(w.mean().item()) < 4 * math.sqrt(2 / fan_out) / math.sqrt(w.numel())
        assert abs(excess_kurtosis(w)) < 0.1  # normal (a uniform draw has -1.2)
    norms = [m for m in branch.modules() if isinstance(m, torch.nn.GroupNorm)]
    assert len(norms) == 7 and all(bool((g.weight == 1).all() and (g.bias == 0).all()) for g in norms)
    classifier = probe.LinearProbe(torch.nn.Identity(), 128, 54).classifier  # COCO's 54 semantic classes
    assert classifier.weight.std().item() == pytest.approx(math.sqrt(2 / 54), rel=0.05)
    assert abs(excess_kurtosis(classifier.weight)) < 0.3 and bool((classifier.bias == 0).all())
    fpn = model.backbone("resnet18", None, freeze=True).fpn
    for conv in (m for m in fpn.modules() if isinstance(m, torch.nn.Conv2d)):
        bound = math.sqrt(3 / (conv.in_channels * conv.weight.shape[2] * conv.weight.shape[3]))
        assert conv.weight.abs().max().item() <= bound and conv.weight.abs().max().item() > 0.99 * bound
        assert bool((conv.bias == 0).all())


def test_the_held_out_pretext_asks_which_point_of_the_key_view():
    """One view of three points, q = k one-hot: positives at cosine 1, negatives (the other
    points of the view, at least NEAR px away) at 0, so each point's InfoNCE is
    log(1 + 2 exp(-1 / T)), chance log 3, the gap 1. A point within NEAR px of another is no
    negative of it; another image's keys never are. Keys swapped within the view (the shuffled
    control's positives) score above chance with a gap below 0."""
    q = torch.eye(4)[:3]
    image = torch.tensor([0, 0, 0])
    xy = torch.tensor([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0]])
    got = model.pretext(q, q.clone(), image, xy, 0.5)
    assert got.infonce == pytest.approx(math.log(1 + 2 * math.exp(-2)), rel=1e-5)
    assert got.chance == pytest.approx(math.log(3)) and got.cos_gap == pytest.approx(1.0) and got.points == 3
    near = model.pretext(q, q.clone(), image, torch.tensor([[0.0, 0.0], [model.NEAR - 1.0, 0.0], [0.0, 20.0]]), 0.5)
    assert near.chance == pytest.approx((2 * math.log(2) + math.log(3)) / 3)
    with pytest.raises(ValueError, match="none of 3 points"):
        model.pretext(q, q.clone(), torch.tensor([0, 1, 2]), xy, 0.5)
    wrong = model.pretext(q, q[[1, 2, 0]], image, xy, 0.5)
    assert wrong.infonce > wrong.chance > got.infonce and wrong.cos_gap < 0


def test_the_collapse_monitor_is_the_mean_cosine_of_two_queue_keys():
    moco = model.PixelMoCo(model.DenseNet("resnet18", None, True), dim=4, hidden=8, queue_size=4)
    moco.queue.copy_(torch.eye(4))
    assert moco.queue_similarity() == pytest.approx(0.0)
    moco.queue.copy_(torch.nn.functional.normalize(torch.ones(4, 4), dim=0))
    assert moco.queue_similarity() == pytest.approx(1.0)
    keys = torch.nn.functional.normalize(torch.randn(4, 9), dim=0)
    moco.queue = keys
    pairs = [(keys[:, i] @ keys[:, j]).item() for i in range(9) for j in range(9) if i != j]
    assert moco.queue_similarity() == pytest.approx(sum(pairs) / len(pairs), abs=1e-6)


def test_the_crop_falls_back_to_torchvision_s_centre_crop_of_the_allowed_ratio():
    """Ten failed draws (a scale no crop can have) give RandomResizedCrop's fallback: the
    largest centred crop of an allowed aspect ratio, not the whole frame."""
    g = torch.Generator().manual_seed(0)
    wide = augment.random_crop(90, 160, 32, g, scale=(2.0, 2.0))
    assert (wide.top, wide.left, wide.height, wide.width) == (0, 20, 90, 120)
    tall = augment.random_crop(160, 90, 32, g, scale=(2.0, 2.0))
    assert (tall.top, tall.left, tall.height, tall.width) == (20, 0, 120, 90)
    square = augment.random_crop(100, 120, 32, g, scale=(2.0, 2.0))
    assert (square.top, square.left, square.height, square.width) == (0, 0, 100, 120)
