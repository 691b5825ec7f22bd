"""The NeRV family's codec: CEM fine-tuning (straight-through quantisation, the consistent
Gaussian rate), the container round trip (bit-exact tensors and frames) and the
nerv_compress job end to end, on tiny clips (64 x 36, 6 frames, ~0.02M parameters)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from conftest import TINY_NERV_MODELS, kill_at, smooth_clip, write_frames_store

from nvd.compression.container import ContainerError, EncodedVideo, from_bytes, read_container, to_bytes
from nvd.compression.outputs import REC_VIDEO
from nvd.core import versioning
from nvd.core.errors import ConfigError
from nvd.core.layout import METRICS_NAME, STREAM_NAME
from nvd.eval.metrics import psnr
from nvd.models.nerv.cem import EMBEDDING_NAME, CEMTask, dequantise, gaussian_rate_bits
from nvd.models.nerv.codec import (
    build_decoded,
    decode_nerv,
    encode_nerv,
    predicted_bits,
    render_decoded,
    side_bits,
    video_info,
)
from nvd.models.nerv.codec_config import cem_config, point_names, target_of
from nvd.models.nerv.compress import nerv_compress_job
from nvd.models.nerv.factory import build_model
from nvd.models.nerv.run import model_fields, train_nerv_run
from nvd.models.nerv.training import nerv_train_config
from nvd.train.logs import read_log
from nvd.train.loop import seed_everything, train

T, H, W = 6, 36, 64
NERV_SECTION = {"model_size": 0.02, "per_model": TINY_NERV_MODELS, "train": {"device": "cpu", "seed": 0}}


def cem(**values):
    return cem_config({"targets": [1.0], "epochs": 2, "init_bits": 6.0, "train": {"device": "cpu"}, **values})


def tiny_task(name: str, cfg=None, target: float = 1.0, seed: int = 0):
    nerv_cfg = nerv_train_config(NERV_SECTION, model=name)
    seed_everything(seed)
    model = build_model(nerv_cfg.model_config(), H, W, T)
    return CEMTask(model, smooth_clip(T, H, W), cfg or cem(), target, nerv_cfg.loss_name)


def video():
    return video_info(T, H, W, 10.0)


@pytest.fixture(autouse=True)
def compress_stage(monkeypatch):
    """The stage's code version, until nvd.core.versioning lists it."""
    monkeypatch.setitem(versioning.STAGE_ENTRIES, "nerv_compress", ("nvd.core.jobs", "nvd.models.nerv.compress"))


# ---------------------------------------------------------------- fine-tuning


def test_straight_through_gradients_reach_weights_scales_and_embeddings():
    task = tiny_task("hnerv_boost", cem(init_bits=4.0), target=0.01)  # far above the target: rate on
    values, codes = task.quant.quantise(task.weights)
    name = task.quant.names[0]
    assert torch.equal(codes[name], torch.round(codes[name]))  # integer codes forward
    assert torch.allclose(values[name], codes[name] * task.quant.log_scale[0].exp())
    loss, _ = task.step_loss(1, torch.Generator())
    loss.backward()
    assert float(loss.detach()) > task.cfg.rate_lambda * 0.01
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in task.weights.values())
    assert bool((task.quant.log_scale.grad != 0).all())
    for p in (task.quant.embedding, task.quant.embedding_log_scale, task.quant.embedding_offset):
        assert p.grad is not None and float(p.grad.abs().sum()) > 0
    assert all(p.grad is None for p in task.model.encoder.parameters())  # not in the file


def test_rate_estimate_is_the_coders_model():
    task = tiny_task("hnerv")
    tensors = task.export()
    estimate = sum(float(gaussian_rate_bits(t.codes.float())) for t in tensors)
    assert estimate == pytest.approx(predicted_bits(tensors), rel=0.01)
    # the training estimate of the same state (straight-through codes) agrees too
    assert task.estimated_bpp() * T * H * W == pytest.approx(estimate + task.side_bits, rel=1e-4)


def test_initial_scales_are_solved_for_the_target():
    task = tiny_task("nerv", cem(init_bits=None), target=0.8)
    assert task.estimated_bpp() == pytest.approx(0.8, rel=0.02) and task.estimated_bpp() <= 0.8


def test_fine_tuning_brings_the_rate_down_to_its_target(tmp_path):
    cfg = cem(init_bits=8.0, epochs=4, lr=0.05, rate_lambda=100.0, eval_every=1)
    task = tiny_task("hnerv", cfg, target=1.0)
    before = task.estimated_bpp()
    train(task, task.loop, tmp_path)
    after = task.estimated_bpp()
    assert before > 8 and 0.8 <= after <= 1.05
    rows = read_log(tmp_path)
    assert len(rows) == 4 and rows[-1]["bpp"] < rows[0]["bpp"] and rows[-1]["bpp_model"] < 1.1
    assert 10 < rows[-1]["psnr"] < 60


def test_killed_fine_tuning_resumes_bit_identically(tmp_path):
    cfg = cem(epochs=2, checkpoint_every=1, lr=0.01)
    whole = tiny_task("hnerv", cfg)
    train(whole, whole.loop, tmp_path / "whole")
    killed = kill_at(tiny_task("hnerv", cfg), 9)  # in the second epoch, after the first checkpoint
    with pytest.raises(KeyboardInterrupt):
        train(killed, killed.loop, tmp_path / "resumed")
    resumed = tiny_task("hnerv", cfg)
    assert train(resumed, resumed.loop, tmp_path / "resumed").resumed_from == T
    for a, b in zip(whole.export(), resumed.export()):
        assert torch.equal(a.codes, b.codes) and (a.scale, a.offset) == (b.scale, b.offset)


# ---------------------------------------------------------------- the file


@pytest.mark.parametrize("name", ["nerv", "hnerv_boost"])
def test_file_round_trip_is_bit_exact(name):
    task = tiny_task(name)
    task.step_loss(1, torch.Generator())[0].backward()  # a step, so the weights are no longer the init
    task.optimizer().step()
    tensors = task.export()
    encoder_side = build_decoded(name, model_fields(task.model.cfg), video(), tensors)
    encoder_frames = render_decoded(encoder_side)

    data = to_bytes(encode_nerv(task.model.cfg, video(), tensors))
    decoded = decode_nerv(from_bytes(data, family="nerv"))
    params = dict(decoded.model.named_parameters())
    for t in tensors:
        got = decoded.embeddings if t.name == EMBEDDING_NAME else params[t.name]
        assert got.dtype == torch.float32 and torch.equal(got, dequantise(t))
        assert torch.equal(got, encoder_side.embeddings if t.name == EMBEDDING_NAME
                           else dict(encoder_side.model.named_parameters())[t.name])
    assert (decoded.embeddings is not None) == (name == "hnerv_boost")
    frames = render_decoded(decoded)
    assert frames.shape == (T, H, W, 3) and torch.equal(frames, encoder_frames)
    # the fine-tuning's own evaluation of the exported tensors draws the same video
    assert torch.allclose(task.render_exported(tensors), frames, atol=1e-5)
    # the file's size is the entropy model's bits + the header, plus the coder's flush only
    predicted = predicted_bits(tensors) + side_bits(encode_nerv(task.model.cfg, video(), tensors))
    assert predicted <= 8 * len(data) <= predicted + 96


def test_decoder_refuses_newer_and_foreign_files():
    task = tiny_task("nerv")
    encoded = encode_nerv(task.model.cfg, video(), task.export())
    newer = EncodedVideo("nerv", encoded.video, {**encoded.header, "nerv_format": 2}, encoded.payloads)
    with pytest.raises(ContainerError, match="newer"):
        decode_nerv(newer)
    renamed = [["other.weight", *entry[1:]] if i == 0 else entry for i, entry in enumerate(encoded.header["tensors"])]
    foreign = EncodedVideo("nerv", encoded.video, {**encoded.header, "tensors": renamed}, encoded.payloads)
    with pytest.raises(ContainerError, match="do not fit the model"):
        decode_nerv(foreign)
    with pytest.raises(ContainerError, match="not nerv"):
        decode_nerv(EncodedVideo("nvp", encoded.video, {}, {}))


# ---------------------------------------------------------------- config and the job


def test_points_and_config_checks():
    cfg = cem_config({"targets": [0.05, 0.1, 2]})
    assert point_names(cfg) == ["bpp0.05", "bpp0.1", "bpp2"] and target_of(cfg, "bpp0.1") == 0.1
    with pytest.raises(ConfigError, match=r"unknown rate point 'bpp0.3'.*bpp0.05.*bpp2"):
        target_of(cfg, "bpp0.3")
    for bad in ({"targets": []}, {"targets": [0.1, 0.10]}, {"targets": [-1]}, {"models": ["nope"]},
                {"train": {"iterations": 3}}, {"epochs": 0}, {"rate_lambda": 0}, {"init_bits": 40}, {"nope": 1}):
        with pytest.raises(ConfigError, match="nerv_compress"):
            cem_config(bad)


def test_compress_job_end_to_end(tmp_path):
    store = write_frames_store(tmp_path / "frames.zarr", smooth_clip(T, H, W))
    nerv_cfg = nerv_train_config({**NERV_SECTION, "epochs": 2}, model="hnerv_boost")
    frames = smooth_clip(T, H, W)
    model_path = tmp_path / "hnerv_boost" / "model.pt"
    train_nerv_run(frames, store, nerv_cfg, tmp_path / "hnerv_boost" / "work", model_path)
    sections = {"nerv": NERV_SECTION, "nerv_compress": {"targets": [0.5, 1.0], "epochs": 2, "lr": 0.01,
                                                        "train": {"device": "cpu"}}}
    out, work = tmp_path / "compress" / "bpp1", tmp_path / "compress_work" / "bpp1"
    with pytest.raises(ConfigError, match="unknown rate point 'bpp3'"):
        nerv_compress_job({"model": str(model_path), "frames": str(store)}, str(out), str(work), sections,
                          "bpp3", None, "cpu")
    assert not work.exists()

    def run(measure=False):
        return nerv_compress_job({"model": str(model_path), "frames": str(store)}, str(out), str(work), sections,
                                 "bpp1", None, "cpu", measure=measure)

    metrics = run(measure=True)  # nvd decode in a new process, timed
    point = metrics["points"][0]
    size = (out / STREAM_NAME).stat().st_size
    assert (out / REC_VIDEO).is_file() and json.loads((out / METRICS_NAME).read_text()) == metrics
    assert (metrics["method"], metrics["family"], metrics["kind"], metrics["point"]) == \
        ("hnerv_boost", "nerv", "neural", "bpp1")
    assert point["bytes"] == size and point["bpp"] == pytest.approx(8 * size / (T * H * W), rel=1e-12)
    assert point["bpp"] == pytest.approx(point["bpp_predicted"], rel=0.01) and point["bpp"] < 1.15
    assert point["encode_time_s"] > metrics["fine_tune"]["time_s"] > 0 and point["decode_fps"] > 0
    assert point["decode_peak_mb"] > 0 and metrics["psnr_before"] > 10
    first = (out / STREAM_NAME).read_bytes()
    assert run()["points"][0]["psnr"] == point["psnr"] and (out / STREAM_NAME).read_bytes() == first  # resumed
    sections["nerv_compress"]["epochs"] = 3  # another run: the stale fine-tuning is discarded
    latest = run()
    assert latest["fine_tune"]["iterations"] == 3 * T

    # the file alone decodes: no model, no training run, no work folder
    shutil.rmtree(tmp_path / "hnerv_boost")
    shutil.rmtree(work)
    decoded = decode_nerv(read_container(out / STREAM_NAME, family="nerv"))
    rendered = render_decoded(decoded)
    assert psnr(rendered.clamp(0, 1), frames.float() / 255) == pytest.approx(latest["points"][0]["psnr"], abs=1e-9)
