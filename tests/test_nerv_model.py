"""NeRV family (NeRV, E-NeRV, HNeRV, plain and Boost): shapes, range, boost pieces, sizes, strides."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from nvd.core.errors import ConfigError
from nvd.models.nerv.blocks import hnerv_widths, nerv_widths, stage_blocks, stage_kernels
from nvd.models.nerv.boost import TAT, BoostUnit, TATResBlock, TimeEmbedding, zero_tat
from nvd.models.nerv.config import MODEL_PRESETS, BoostConfig, HNeRVConfig, NeRVConfig, model_config
from nvd.models.nerv.encoding import normalized_time
from nvd.models.nerv.enerv import instance_norm
from nvd.models.nerv.factory import build_model
from nvd.models.nerv.geometry import strides_for
from nvd.models.nerv.registry import construct
from nvd.models.nerv.size import counted_parameters, solve_size

NAMES = sorted(MODEL_PRESETS)
FRAME_SIZES = [(36, 64), (90, 160), (180, 320)]  # (height, width), all 16:9 on a 9 x 16 grid


def tiny(name: str, height: int, width: int, channel_width: float = 8.0, **overrides):
    """A small preset with strides derived for height x width (encoder too for HNeRV)."""
    strides = strides_for(height, width)
    if name.startswith("hnerv"):
        overrides.setdefault("enc_strides", strides)
    return model_config(name, channel_width=channel_width, strides=strides, **overrides)


def tiny_model(name: str, height: int = 36, width: int = 64, num_frames: int = 6, **overrides):
    torch.manual_seed(0)
    return build_model(tiny(name, height, width, **overrides), height, width, num_frames)


def boost_units(model) -> list[BoostUnit]:
    return [m for m in model.modules() if isinstance(m, BoostUnit)]


# ---------------------------------------------------------------- presets and configs


def test_presets_and_overrides():
    assert NAMES == ["enerv", "enerv_boost", "hnerv", "hnerv_boost", "nerv", "nerv_boost"]
    for name in NAMES:
        cfg = model_config(name)
        assert cfg.name == name and cfg.boost == name.endswith("_boost")
    assert model_config("nerv_boost").act == "sin" and model_config("nerv_boost").stem_hidden == 256
    hnerv = model_config("hnerv")
    assert (hnerv.enc_dim, hnerv.embed_channels, hnerv.kernel_min, hnerv.kernel_max) == (64, 16, 1, 5)
    assert hnerv.reduce == 1.2 and hnerv.lower_width == 12
    cfg = model_config("hnerv_boost", strides=[5, 3, 2, 2, 2], boost_cfg={"time_dim": 16})
    assert cfg.strides == (5, 3, 2, 2, 2)  # lists (YAML) become tuples
    assert cfg.boost_cfg == BoostConfig(time_dim=16)
    for bad in ({"nonsense": 1}, {"boost": False}, {"boost_cfg": {"nonsense": 1}}):
        with pytest.raises(ConfigError):
            model_config("nerv", **bad)
    with pytest.raises(ConfigError, match="unknown model"):
        model_config("siren")
    with pytest.raises(ConfigError, match="kernel_max must be odd"):
        model_config("hnerv", kernel_max=4)
    with pytest.raises(ConfigError, match="act must be one of"):
        model_config("nerv", act="tanh")
    with pytest.raises(ConfigError, match="blocks"):
        model_config("nerv", blocks=(1, 1))


def test_schedules():
    assert stage_kernels(5, 1, 5) == (1, 3, 5, 5, 5)  # ks 0_1_5
    assert stage_kernels(5, 1, 5, cap=3) == (1, 3, 3, 3, 3)  # boost: SNeRV kernels <= 3
    assert stage_blocks(5, None, boost=True) == (1, 1, 2, 2, 2)
    assert stage_blocks(3, None, boost=True) == (1, 1, 2)
    assert stage_blocks(5, None, boost=False) == (1,) * 5
    # round(100 / 1.2**k), k = 1..5: 83.3, 69.4, 57.9, 48.2, 40.2; the floor applies below 12.
    assert hnerv_widths(100, 5, 1.2, 12) == (83, 69, 58, 48, 40)
    assert hnerv_widths(20, 5, 1.2, 12) == (17, 14, 12, 12, 12)
    # NeRV: stage 0 = x * expansion, then floor(. / 2**r) for strided stages, floor 12.
    assert nerv_widths(100, (5, 2, 2, 2, 2), 1.0, 2.0, 12) == (100, 50, 25, 12, 12)
    assert nerv_widths(30, (5, 1, 2), 3.0, 2.0, 12) == (90, 90, 45)


# ---------------------------------------------------------------- geometry


@pytest.mark.parametrize(("height", "width", "expected"), [
    (720, 1280, (5, 2, 2, 2, 2)), (1080, 1920, (5, 3, 2, 2, 2)), (180, 320, (5, 2, 2)),
    (90, 160, (5, 2)), (36, 64, (2, 2)),
])
def test_strides_for_keeps_a_9x16_grid(height, width, expected):
    assert strides_for(height, width) == expected
    assert math.prod(expected) * 9 == height and math.prod(expected) * 16 == width


def test_bad_stride_products_name_the_key():
    with pytest.raises(ConfigError, match=r"nerv: strides \(5,2,2,2,2\) multiply to 80 but 180 / 9 = 20"):
        build_model(model_config("nerv", channel_width=8.0), 180, 320, 4)
    with pytest.raises(ConfigError, match=r"enerv_boost: strides \(5,2\) multiply to 10 but 180 / 9 = 20"):
        build_model(model_config("enerv_boost", channel_width=8.0, strides=(5, 2)), 180, 320, 4)
    with pytest.raises(ConfigError,
                       match=r"hnerv: enc_strides \(5,2,2,2,2\) multiply to 80, which does not divide"):
        build_model(model_config("hnerv", channel_width=8.0), 180, 320, 4)
    with pytest.raises(ConfigError, match=r"hnerv_boost: strides \(5,2,2\) multiply to 20 but enc_strides"):
        build_model(model_config("hnerv_boost", channel_width=8.0, strides=(5, 2, 2)), 720, 1280, 4)
    with pytest.raises(ConfigError, match="grid"):  # 4:3 frames do not fit a 9 x 16 grid
        build_model(model_config("nerv", channel_width=8.0, strides=None), 480, 640, 4)
    with pytest.raises(ConfigError, match=r"blocks \(1, 1, 2\) must have one entry per stage"):
        build_model(model_config("nerv", channel_width=8.0, strides=None, blocks=(1, 1, 2)), 90, 160, 4)


def test_full_hd_shapes_on_the_meta_device():
    """720p and 1080p layouts without allocating: HNeRV's embedding is 16 x 9 x 16."""
    for (height, width), enc in (((720, 1280), (5, 2, 2, 2, 2)), ((1080, 1920), (5, 3, 2, 2, 2))):
        for name in NAMES:
            cfg = model_config(name, channel_width=20.0, strides=enc,
                               **({"enc_strides": enc} if name.startswith("hnerv") else {}))
            with torch.device("meta"):
                model = construct(cfg, height, width, 4)
                frames = torch.empty(2, 3, height, width)
                out = model(torch.tensor([0, 1]), frames)
                if name.startswith("hnerv"):
                    assert model.embed(frames).shape == (2, 16, 9, 16)
            assert out.shape == (2, 3, height, width)


# ---------------------------------------------------------------- forward


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("height", "width"), FRAME_SIZES)
def test_output_shape_range_and_frame_dependence(name, height, width):
    model = tiny_model(name, height, width)
    frames = torch.rand(2, 3, height, width)
    with torch.no_grad():
        out = model(torch.tensor([0, 5]), frames)
    assert out.shape == (2, 3, height, width)
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    assert (out[0] - out[1]).abs().max() > 1e-4  # different frames are drawn differently


@pytest.mark.parametrize("name", NAMES)
def test_range_holds_when_the_head_saturates(name):
    """[0, 1] is enforced by the output activation, not by small values: blow up the head."""
    model = tiny_model(name)
    with torch.no_grad():
        model.head.weight.mul_(1e4)
        out = model(torch.arange(4), torch.rand(4, 3, 36, 64))
    assert out.min() >= 0 and out.max() <= 1
    assert out.min() < 0.01 and out.max() > 0.99


def test_hnerv_decode_interpolation_and_time():
    frames = torch.rand(3, 3, 36, 64)
    for name in ("hnerv", "hnerv_boost"):
        model = tiny_model(name)
        with torch.no_grad():
            emb = model.embed(frames)
            assert emb.shape == (3, 16, 9, 16) and model.embedding_shape == (16, 9, 16)
            idx = torch.tensor([0, 1, 2])
            assert torch.equal(model.decode(emb, model.time(idx)), model(idx, frames))
            mid = model.decode((emb[:1] + emb[2:]) / 2, model.time(idx[1:2]))  # interpolation
            assert mid.shape == (1, 3, 36, 64)
            t0, t1 = torch.tensor([0.25]), torch.tensor([0.75])
            same_embedding_other_time = (model.decode(emb[:1], t0) - model.decode(emb[:1], t1)).abs().max()
        if name == "hnerv":
            assert same_embedding_other_time == 0  # plain HNeRV ignores time
        else:
            assert same_embedding_other_time > 1e-5  # the boost conditions on time
        with pytest.raises(ValueError, match="frames"):
            model(idx)


def test_boost_structure():
    """[SNeRV + TAT residual block] x (1, 1, 2, 2, 2); HNeRV-Boost's stem adds one more."""
    expected = {"nerv": 0, "enerv": 0, "hnerv": 0, "nerv_boost": 8, "enerv_boost": 8, "hnerv_boost": 9}
    models = {}
    with torch.device("meta"):
        for name, units in expected.items():
            models[name] = construct(model_config(name, channel_width=20.0), 720, 1280, 4)
            assert len(boost_units(models[name])) == units, name
    plain, boosted = models["hnerv"], models["hnerv_boost"]
    assert [u.conv.kernel_size[0] for u in plain.units] == [1, 3, 5, 5, 5]
    assert [u.up.conv.kernel_size[0] for u in boosted.units] == [1, 3, 3, 3, 3, 3, 3, 3]
    assert boosted.stem.up[0].kernel_size == (1, 1)  # the 1x1 conv on the embedding


# ---------------------------------------------------------------- boost pieces


def test_time_embedding_values():
    t = normalized_time(torch.tensor([0, 3]), 4)  # (i + 1) / N
    assert t.tolist() == [0.25, 1.0]
    embedding = TimeEmbedding(BoostConfig())
    enc = embedding.encode(t)
    assert enc.shape == (2, 160)  # 80 sines, then 80 cosines
    expected = {0: math.sin(math.pi * 0.25), 80: math.cos(math.pi * 0.25),
                1: math.sin(1.25 * math.pi * 0.25), 81: math.cos(1.25 * math.pi * 0.25),
                79: math.sin(1.25**79 * math.pi * 0.25), 159: math.cos(1.25**79 * math.pi * 0.25)}
    for column, value in expected.items():
        assert enc[0, column].item() == pytest.approx(value, abs=1e-6)
    assert enc[1, 0].item() == pytest.approx(0.0, abs=1e-6)  # sin(pi * 1)
    assert enc[1, 80].item() == pytest.approx(-1.0, abs=1e-6)  # cos(pi * 1)
    # The MLP: 160 -> 64 -> sine -> 32 -> sine.
    fc1, fc2 = embedding.net[0], embedding.net[2]
    assert (fc1.in_features, fc1.out_features, fc2.out_features) == (160, 64, 32)
    manual = torch.sin(fc2(torch.sin(fc1(enc))))
    assert torch.allclose(embedding(t), manual)


def test_tat_zero_scale_and_shift_is_the_identity():
    torch.manual_seed(0)
    tat = TAT(channels=5, cond_dim=32, hidden=32)
    x, cond = torch.randn(3, 5, 4, 6), torch.randn(3, 32)
    assert not torch.equal(tat(x, cond), x)
    zero_tat(tat)
    assert torch.equal(tat(x, cond), x)
    # Shift only: x + b per channel; scale -1 everywhere: x * 0 + shift.
    with torch.no_grad():
        tat.shift[-1].bias.copy_(torch.arange(5.0))
    assert torch.allclose(tat(x, cond), x + torch.arange(5.0)[None, :, None, None])
    with torch.no_grad():
        tat.scale[-1].bias.fill_(-1.0)
    assert torch.allclose(tat(x, cond), torch.arange(5.0)[None, :, None, None].expand_as(x))


def test_tat_residual_block():
    torch.manual_seed(0)
    block = TATResBlock(channels=4, cond_dim=32, hidden=32)
    x, cond = torch.randn(2, 4, 5, 7), torch.randn(2, 32)
    zero_tat(block.tat0)
    zero_tat(block.tat1)
    manual = x + block.conv1(F.gelu(block.conv0(x)))  # TATs are identities now
    assert torch.allclose(block(x, cond), manual, atol=1e-6)
    with torch.no_grad():
        block.conv1.weight.zero_()
        block.conv1.bias.zero_()
    assert torch.equal(block(x, cond), x)  # the skip alone


# ---------------------------------------------------------------- sizes


@pytest.mark.parametrize("name", NAMES)
def test_solver_hits_the_target_within_two_percent(name):
    cases = [(720, 1280, 132, 0.75), (720, 1280, 132, 3.0), (180, 320, 60, 0.75), (90, 160, 60, 0.75)]
    for height, width, frames, size in cases:
        overrides = {"model_size": size, "strides": None}
        if name.startswith("hnerv"):
            overrides["enc_strides"] = None
        solution = solve_size(model_config(name, **overrides), height, width, frames)
        assert abs(solution.count - size * 1e6) <= 0.02 * size * 1e6, (height, width, size, solution)
        assert solution.target == round(size * 1e6)
        assert solution.cfg.channel_width >= 1
    # The reported count is the real model's count (built on the CPU, not the meta device).
    real = construct(solution.cfg, 90, 160, 60)
    assert counted_parameters(real, 60) == solution.count


def test_small_budgets_and_infeasible_ones():
    """0.1M works where the settings allow it; below the smallest model it is a ConfigError."""
    small = [("nerv", {"stem_hidden": 64}, 720, 1280), ("nerv", {"stem_hidden": 64}, 90, 160),
             ("nerv_boost", {"stem_hidden": 64}, 90, 160), ("hnerv", {"enc_strides": None}, 720, 1280),
             ("hnerv_boost", {"enc_strides": None}, 90, 160)]
    for name, overrides, height, width in small:
        cfg = model_config(name, model_size=0.1, strides=None, **overrides)
        solution = solve_size(cfg, height, width, 20)
        assert abs(solution.relative_error) <= 0.02, (name, solution)
    with pytest.raises(ConfigError, match=r"enerv: model_size 0.1M is below the smallest model.*block_dim"):
        solve_size(model_config("enerv", model_size=0.1), 720, 1280, 20)
    with pytest.raises(ConfigError, match=r"hnerv: model_size 0.5M is below.*embed_channels"):
        solve_size(model_config("hnerv", model_size=0.5), 720, 1280, 300)  # 300 embeddings: 0.69M


def test_nerv_trims_its_stem_when_width_steps_are_coarse():
    """One NeRV channel costs 9 * 16 * (stem_hidden + 1) parameters, 74k at 512: too coarse for
    2% of 0.75M, so the solver widens the stem hidden layer to close the gap."""
    solution = solve_size(model_config("nerv", model_size=0.75), 720, 1280, 132)
    assert solution.cfg.stem_hidden > 512
    assert abs(solution.relative_error) <= 0.02


def test_build_model_solves_and_reports_the_exact_count():
    cfg = model_config("hnerv_boost", model_size=0.2, strides=None, enc_strides=None)
    model = build_model(cfg, 90, 160, 10)
    solution = solve_size(cfg, 90, 160, 10)
    assert model.cfg == solution.cfg
    assert counted_parameters(model, 10) == solution.count


def test_hnerv_encoder_not_counted_but_embeddings_are():
    model = tiny_model("hnerv_boost", num_frames=7)
    total = sum(p.numel() for p in model.parameters())
    encoder = sum(p.numel() for p in model.encoder.parameters())
    assert encoder > 0
    assert model.embedding_numel == 16 * 9 * 16  # 36 x 64 frames, strides (2, 2): 16 x 9 x 16
    assert counted_parameters(model, 7) == total - encoder + 7 * 16 * 9 * 16
    assert counted_parameters(model, 8) - counted_parameters(model, 7) == 16 * 9 * 16
    wider_encoder = tiny_model("hnerv_boost", num_frames=7, enc_dim=96)
    assert sum(p.numel() for p in wider_encoder.parameters()) > total
    assert counted_parameters(wider_encoder, 7) == counted_parameters(model, 7)
    nerv = tiny_model("nerv")  # no embeddings, everything counted
    assert counted_parameters(nerv, 7) == sum(p.numel() for p in nerv.parameters())


# ---------------------------------------------------------------- gradients


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_every_parameter(name):
    model = tiny_model(name, num_frames=4)
    torch.manual_seed(1)
    frames, target = torch.rand(2, 3, 36, 64), torch.rand(2, 3, 36, 64)
    F.mse_loss(model(torch.tensor([1, 2]), frames), target).backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert dead == []


def test_instance_norm_gradient_whatever_the_memory_format():
    """E-NeRV's instance norm equals torch's, and its input gradient is the same when the
    gradient arrives channels-last (what a channels-last convolution after it sends back in
    training, objective.NeRVTask). torch's own CPU kernel gets that case wrong (torch 2.14),
    which stalled E-NeRV at 12 dB."""
    torch.manual_seed(0)
    x, grad = torch.randn(1, 25, 9, 16, requires_grad=True), torch.randn(1, 25, 9, 16)
    assert torch.allclose(instance_norm(x), F.instance_norm(x), atol=1e-5)
    (nchw,) = torch.autograd.grad(instance_norm(x), x, grad)
    (nhwc,) = torch.autograd.grad(instance_norm(x), x, grad.contiguous(memory_format=torch.channels_last))
    (reference,) = torch.autograd.grad(F.instance_norm(x), x, grad)
    assert torch.allclose(nchw, reference, atol=1e-5) and torch.allclose(nhwc, reference, atol=1e-5)


def test_configs_are_frozen_dataclasses():
    cfg = model_config("nerv")
    assert isinstance(cfg, NeRVConfig) and isinstance(model_config("hnerv"), HNeRVConfig)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.act = "sin"  # type: ignore[misc]
