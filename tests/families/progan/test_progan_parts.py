"""The progressive GAN's parts, against hand computations: the growth schedule, the fade-in of G
and D (at alpha 0 the grown network is the smaller one), the equalised learning rate (weights
stored N(0, 1), scaled at run time), the minibatch standard deviation feature, pixel norm, and
the data brought to a power-of-two side."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from genlab.data import ImageDataset
from genlab.errors import GenlabError
from genlab.families.progan.data import fit_images, prepare
from genlab.families.progan.layers import EqualizedConv2d, EqualizedLinear, minibatch_std, pixel_norm, schedule
from genlab.families.progan.networks import ProgressiveDiscriminator, ProgressiveGenerator, stage_widths
from genlab.registry import build_model, resolve_model_name

TINY = {"channels": 4, "max_channels": 8, "latent_dim": 8}


def test_the_schedule_grows_fades_and_stays():
    # stage 0 for 10 images, then each stage fades over 20 and stays 10; the last stays for ever
    assert [schedule(i, 2, 20, 10) for i in (0, 9)] == [(0, 1.0), (0, 1.0)]
    assert schedule(10, 2, 20, 10) == (1, 0.0) and schedule(15, 2, 20, 10) == (1, 0.25)
    assert schedule(29, 2, 20, 10) == (1, 0.95) and schedule(30, 2, 20, 10) == (1, 1.0)
    assert schedule(39, 2, 20, 10) == (1, 1.0) and schedule(40, 2, 20, 10) == (2, 0.0)
    assert schedule(70, 2, 20, 10) == (2, 1.0) and schedule(10 ** 9, 2, 20, 10) == (2, 1.0)
    assert schedule(5, 0, 20, 10) == (0, 1.0)            # a 4x4 model never grows
    assert schedule(0, 3, 0, 0) == (3, 1.0)              # no phases: the full side at once
    assert schedule(12, 2, 0, 10) == (1, 1.0)            # no fade: a new side at alpha 1


def test_widths_double_towards_4x4_up_to_the_cap():
    assert stage_widths(32, 16, 64) == [64, 64, 32, 16]
    assert stage_widths(8, 4, 8) == [8, 4]


def test_at_alpha_0_the_grown_generator_is_the_smaller_one_upsampled():
    torch.manual_seed(0)
    g = ProgressiveGenerator(8, stage_widths(16, 4, 8), 3)
    z = torch.randn(5, 8)
    for stage in (1, 2):
        small = g(z, stage - 1, 1.0)
        grown = g(z, stage, 0.0)
        assert grown.shape == (5, 3, 4 << stage, 4 << stage)
        assert torch.equal(grown, F.interpolate(small, scale_factor=2, mode="nearest"))
        assert not torch.allclose(g(z, stage, 0.5), grown)   # the new block does count once alpha > 0
        half = g(z, stage, 0.5)
        assert torch.allclose(half, 0.5 * grown + 0.5 * g(z, stage, 1.0), atol=1e-6)


def test_at_alpha_0_the_grown_discriminator_scores_the_image_average_pooled():
    torch.manual_seed(0)
    d = ProgressiveDiscriminator(stage_widths(16, 4, 8), 3)
    x = torch.randn(8, 3, 16, 16)
    x8 = F.avg_pool2d(x, 2)
    assert torch.equal(d(x, 2, 0.0), d(x8, 1, 1.0))
    assert torch.equal(d(x8, 1, 0.0), d(F.avg_pool2d(x8, 2), 0, 1.0))
    assert not torch.allclose(d(x, 2, 0.5), d(x, 2, 0.0))


def test_a_model_at_the_first_image_of_a_fade_draws_what_it_drew_before_it():
    model = build_model("progan", image_shape=(1, 16, 16), fade_images=100, stable_images=50, **TINY).eval()
    z = torch.randn(4, 8, generator=torch.Generator().manual_seed(0))
    model._seen = 49
    before = model.decode(z)
    model._seen = 50   # stage 1 at alpha 0
    assert model.growth() == {"images_seen": 50, "stage": 1, "alpha": 0.0, "side": 8}
    assert before.shape == (4, 1, 16, 16) and torch.equal(model.decode(z), before)
    assert before[..., ::2, ::2].repeat_interleave(2, -1).repeat_interleave(2, -2).equal(before)   # 8x8, blown up
    model._seen = 100
    assert not torch.equal(model.decode(z), before)


def test_real_images_fade_as_the_generator_does():
    model = build_model("progan", image_shape=(1, 16, 16), **TINY)
    x = torch.rand(2, 1, 16, 16)
    x8 = F.avg_pool2d(x * 2 - 1, 2)
    assert torch.allclose(model.real_at(x, 1, 1.0), x8)
    assert torch.allclose(model.real_at(x, 1, 0.0), F.interpolate(F.avg_pool2d(x8, 2), scale_factor=2))
    assert torch.equal(model.real_at(x, 2, 1.0), x * 2 - 1)


def test_equalised_weights_are_stored_standard_normal_and_scaled_at_run_time():
    torch.manual_seed(0)
    conv = EqualizedConv2d(64, 32, 3)
    w = conv.weight.detach()
    assert abs(float(w.mean())) < 0.02 and abs(float(w.std()) - 1) < 0.02
    assert torch.equal(conv.bias, torch.zeros(32))
    c = math.sqrt(2) / math.sqrt(64 * 3 * 3)
    assert conv.scale == pytest.approx(c)

    plain = nn.Conv2d(64, 32, 3, padding=1)
    with torch.no_grad():
        plain.weight.copy_(conv.weight * c)
        plain.bias.copy_(conv.bias)
    x = torch.randn(2, 64, 5, 5)
    assert torch.allclose(conv(x), plain(x), atol=1e-5)
    # the scale is applied in the forward pass, so the stored weight's gradient is c times the
    # plain weight's: Adam, blind to that scale, moves every layer's weights at the same pace
    conv(x).square().sum().backward()
    plain(x).square().sum().backward()
    assert torch.allclose(conv.weight.grad, c * plain.weight.grad, rtol=1e-4, atol=1e-5)
    # a changed stored weight changes the output at once: nothing was folded in at init
    with torch.no_grad():
        conv.weight.mul_(2)
        plain.weight.mul_(2)
    assert torch.allclose(conv(x), plain(x), atol=1e-4)

    dense = EqualizedLinear(100, 7, gain=1.0)
    v = torch.randn(3, 100)
    assert torch.allclose(dense(v), v @ (dense.weight / 10).T, atol=1e-6)


def test_minibatch_std_against_a_hand_computation():
    x = torch.randn(6, 2, 3, 3, generator=torch.Generator().manual_seed(0))
    # strided groups (image i with i + N/g, ...); one that does not divide the batch shrinks to the
    # largest size that does (4 -> 3 of 6)
    for group, members in ((3, [[0, 2, 4], [1, 3, 5]]), (0, [list(range(6))]), (2, [[0, 3], [1, 4], [2, 5]]),
                            (4, [[0, 2, 4], [1, 3, 5]])):
        out = minibatch_std(x, group)
        assert out.shape == (6, 3, 3, 3) and torch.equal(out[:, :2], x)
        for images in members:
            stds = []
            for c in range(2):
                for i in range(3):
                    for j in range(3):
                        values = [float(x[n, c, i, j]) for n in images]
                        mean = sum(values) / len(values)
                        stds.append(math.sqrt(sum((v - mean) ** 2 for v in values) / len(values) + 1e-8))
            expected = sum(stds) / len(stds)
            for n in images:
                assert torch.allclose(out[n, 2], torch.full((3, 3), expected), atol=1e-6), (group, n)


def test_minibatch_std_groups_are_those_of_a_data_parallel_share():
    # a process of W takes every W-th image of the batch: its groups are the whole batch's
    x = torch.randn(16, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    whole = minibatch_std(x, 4)[:, 3]
    for world in (2, 4):
        for rank in range(world):
            assert torch.allclose(minibatch_std(x[rank::world], 4)[:, 3], whole[rank::world], atol=1e-6)


def test_pixel_norm_gives_each_pixel_unit_rms_over_channels():
    x = torch.randn(2, 5, 3, 3) * 7
    rms = pixel_norm(x).pow(2).mean(dim=1).sqrt()
    assert torch.allclose(rms, torch.ones_like(rms), atol=1e-5)


def test_data_are_padded_or_resized_to_the_side_asked():
    mnist_like = (torch.rand(3, 1, 28, 28) * 255).to(torch.uint8)
    padded = fit_images(mnist_like, 32)
    assert padded.dtype == torch.uint8 and padded.shape == (3, 1, 32, 32)
    assert torch.equal(padded[:, :, 2:30, 2:30], mnist_like)
    assert torch.equal(padded[:, :, 0, 2:30], mnist_like[:, :, 0])   # the border replicated
    digits = torch.rand(3, 1, 8, 8)
    up = fit_images(digits, 16)
    assert up.dtype == torch.float32 and up.shape == (3, 1, 16, 16) and 0 <= up.min() and up.max() <= 1
    assert torch.allclose(F.avg_pool2d(fit_images(digits, 16, "resize"), 2).mean(), digits.mean(), atol=0.02)
    photos = torch.rand(2, 3, 20, 16)   # not square: the centre square, then shrunk
    assert fit_images(photos, 8).shape == (2, 3, 8, 8)
    with pytest.raises(GenlabError, match="image_fit=resize"):
        fit_images(torch.rand(1, 1, 64, 64), 32, "pad")

    data = ImageDataset(mnist_like, torch.tensor([1, 2, 3]), name="mnist")
    fitted = prepare(data, {"image_size": 32})
    assert fitted.image_shape == (1, 32, 32) and torch.equal(fitted.labels, data.labels) and fitted.name == "mnist"
    assert prepare(data, {}).image_shape == (1, 32, 32)                    # 28 -> nearest power of two
    assert prepare(data, {"image_shape": (1, 16, 16)}).image_shape == (1, 16, 16)   # a run's own side
    with pytest.raises(GenlabError, match="power of two"):
        prepare(data, {"image_size": 24})
    with pytest.raises(GenlabError, match="2-D images"):
        prepare(ImageDataset(torch.zeros(2, 1, 8, 8, 8)), {})


def test_names_and_settings():
    assert resolve_model_name("pggan") == resolve_model_name("progressive-gan") == "progan"
    model = build_model("progan", image_shape=(3, 8, 8), **TINY)
    assert model.config.ema_decay == 0.999 and model.capabilities.latent_space and not model.capabilities.held_out_loss
    assert model.latent_dim == 8 and model.sample(2).shape == (2, 3, 8, 8)
    for shape, message in (((1, 28, 28), "power of two"), ((1, 8, 16), "square"), ((1, 2, 2), "power of two")):
        with pytest.raises(GenlabError, match=message):
            build_model("progan", image_shape=shape, **TINY)
    with pytest.raises(GenlabError, match="does not match"):
        build_model("progan", image_shape=(1, 8, 8), image_size=16, **TINY)
    with pytest.raises(GenlabError, match="unknown loss"):
        build_model("progan", image_shape=(1, 8, 8), loss="hinge", **TINY)
