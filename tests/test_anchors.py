"""The traditional anchors: their config, one curve on a real frames store, and what they measure."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import smooth_clip, write_frames_store

from nvd.compression import anchors
from nvd.compression.anchor_config import (
    X26X_CRFS,
    AnchorConfig,
    AnchorCurve,
    anchor_config,
    anchor_curve,
    anchor_names,
)
from nvd.compression.anchors import codec_anchor_job, measure_point
from nvd.compression.ffmpeg import decode_rgb_video
from nvd.core.errors import ConfigError
from nvd.eval.metrics import psnr

POINT_KEYS = {"crf", "bytes", "bits", "bpp", "psnr", "ms_ssim", "lpips", "flip", "encode_time_s", "decode_time_s",
              "decode_fps", "decode_peak_mb"}


def one_anchor(**spec):
    return {"codec_anchor": {"anchors": [spec]}}


def test_the_default_curves_and_their_names():
    names = anchor_names(AnchorConfig())
    assert names == anchor_names(anchor_config(None)) == anchor_names(anchor_config({}))
    assert len(names) == len(set(names)) == 9
    assert {"x264_medium_yuv420p", "x264_veryslow_yuv444p", "x265_medium_yuv444p", "x265_veryslow_yuv420p",
            "svtav1_6_yuv420p"} <= set(names)
    assert not any(name.startswith("svtav1") and name.endswith("yuv444p") for name in names)
    curve = anchor_curve(AnchorConfig(), "x265_veryslow_yuv444p")
    assert curve == AnchorCurve("x265", "veryslow", "yuv444p", X26X_CRFS)


def test_a_written_section_replaces_the_curves_and_a_numeric_preset_names_them():
    cfg = anchor_config({"anchors": [{"codec": "svtav1", "preset": 8, "crfs": [20, 40]},
                                     {"codec": "aom", "preset": "6", "crfs": [30], "pix_fmts": ["yuv444p"]}]})
    assert anchor_names(cfg) == ["svtav1_8_yuv420p", "aom_6_yuv444p"]
    assert anchor_curve(cfg, "svtav1_8_yuv420p").crfs == (20, 40)
    known = r"\['svtav1_8_yuv420p', 'aom_6_yuv444p'\]"
    with pytest.raises(ConfigError, match=r"unknown anchor 'x265_medium_yuv420p'.*" + known):
        anchor_curve(cfg, "x265_medium_yuv420p")


@pytest.mark.parametrize("spec, key, message", [
    ({"codec": "vp9", "preset": "medium", "crfs": [30]}, "anchors[0].codec", "unknown video codec 'vp9'"),
    ({"codec": "svtav1", "preset": 6, "crfs": [30], "pix_fmts": ["yuv420p", "yuv444p"]}, "anchors[0].pix_fmts[1]",
     "svtav1 encodes yuv420p only"),
    ({"codec": "x264", "preset": "medium", "crfs": [20, 52]}, "anchors[0].crfs[1]", "x264 takes a crf from 0 to 51"),
    ({"codec": "x265", "preset": "snail", "crfs": [20]}, "anchors[0].preset", "x265 has no preset 'snail'"),
    ({"codec": "x264", "preset": "fast", "crfs": []}, "anchors[0].crfs", "non-empty list"),
    ({"codec": "x264", "preset": "fast", "crfs": [20, 20]}, "anchors[0].crfs", "twice"),
    ({"codec": "x264", "preset": "fast"}, "anchors[0]", r"lacks \['crfs'\]"),
    ({"codec": "x264", "preset": "fast", "crfs": [20], "crf": 3}, "anchors[0]", r"unknown key\(s\) \['crf'\]"),
])
def test_bad_anchor_settings_name_the_key(spec, key, message):
    with pytest.raises(ConfigError, match=message) as caught:
        anchor_config({"anchors": [spec]})
    assert f"codec_anchor.{key}" in str(caught.value)


def test_a_curve_given_twice_and_an_unknown_section_key_are_refused():
    twice = [{"codec": "x264", "preset": "fast", "crfs": [20], "pix_fmts": ["yuv420p"]},
             {"codec": "x264", "preset": "fast", "crfs": [30]}]
    with pytest.raises(ConfigError, match=r"'codec_anchor.anchors\[1\]': curve x264_fast_yuv420p is already given"):
        anchor_config({"anchors": twice})
    with pytest.raises(ConfigError, match=r"section 'codec_anchor': unknown key\(s\) \['curves'\]"):
        anchor_config({"curves": []})
    with pytest.raises(ConfigError, match="codec_anchor.anchors"):
        anchor_config({"anchors": []})


def test_a_curve_on_a_frames_store(tmp_path, monkeypatch):
    monkeypatch.setattr(anchors, "code_version", lambda stage: f"version-of-{stage}")
    clip = smooth_clip(8, 64, 64)
    store = write_frames_store(tmp_path / "frames.zarr", clip)
    out = tmp_path / "anchors" / "x264_ultrafast_yuv420p"
    sections = one_anchor(codec="x264", preset="ultrafast", crfs=[30, 10, 45], pix_fmts=["yuv420p"])
    metrics = codec_anchor_job(store, out, "x264_ultrafast_yuv420p", sections, lpips_weights=None)

    assert json.loads((out / "metrics.json").read_text()) == metrics
    assert {k: metrics[k] for k in ("method", "kind", "codec", "preset", "pix_fmt", "frames", "height", "width")} == {
        "method": "x264_ultrafast_yuv420p", "kind": "anchor", "codec": "x264", "preset": "ultrafast",
        "pix_fmt": "yuv420p", "frames": 8, "height": 64, "width": 64}
    assert metrics["fps"] == 10.0 and metrics["ffmpeg"].startswith("ffmpeg version")
    assert metrics["code_version"] == "version-of-codec_anchor"
    assert metrics["config"]["crfs"] == [30, 10, 45] and metrics["config"]["name"] == "x264_ultrafast_yuv420p"
    points = metrics["points"]
    assert [p["crf"] for p in points] == [45, 30, 10]  # by bpp, ascending: the coarsest first
    bpps = [p["bpp"] for p in points]
    assert bpps == sorted(bpps) and bpps[0] < bpps[-1]
    assert [p["psnr"] for p in points] == sorted(p["psnr"] for p in points)
    assert points[-1]["psnr"] > 35  # CRF 10 on a smooth clip
    target = clip.float() / 255
    for point in points:
        assert set(point) == POINT_KEYS and point["lpips"] is None
        assert point["bits"] == 8 * point["bytes"] and point["bpp"] == point["bits"] / (8 * 64 * 64)
        assert 0 < point["ms_ssim"] <= 1 and 0 <= point["flip"] < 1
        assert point["encode_time_s"] > 0 and point["decode_fps"] > 0 and 0 < point["decode_peak_mb"] < 400
        stream = (out / f"crf{point['crf']}.h264").read_bytes()
        assert len(stream) == point["bytes"]
        decoded = decode_rgb_video(stream, "x264", 8, 64, 64)  # the kept file is the stream that was measured
        assert decoded.shape == (8, 64, 64, 3)
        assert psnr(torch.from_numpy(decoded).float() / 255, target) == pytest.approx(point["psnr"], abs=1e-6)
    assert sorted(p.name for p in out.iterdir()) == ["crf10.h264", "crf30.h264", "crf45.h264", "metrics.json"]

    with pytest.raises(ConfigError, match="unknown anchor 'x265_medium_yuv420p'"):
        codec_anchor_job(store, tmp_path / "other", "x265_medium_yuv420p", sections, lpips_weights=None)
    assert not (tmp_path / "other").exists()


def sharp_colour_edges(frames: int = 4, size: int = 64) -> np.ndarray:
    """uint8 [T, size, size, 3]: 1-pixel red and blue columns on green, drifting: all the
    detail is in the colour, which 4:2:0 halves."""
    clip = np.zeros((frames, size, size, 3), np.uint8)
    clip[..., 1] = 120
    for t in range(frames):
        columns = (np.arange(size) + t) % 4
        clip[t, :, columns == 0, 0] = 230
        clip[t, :, columns == 2, 2] = 230
    return clip


def test_yuv444_beats_yuv420_on_sharp_colour_edges():
    clip = sharp_colour_edges()
    target = torch.from_numpy(clip).float() / 255
    figures = {}
    for pix_fmt in ("yuv420p", "yuv444p"):
        point, _ = measure_point(clip, target, AnchorCurve("x265", "ultrafast", pix_fmt, (20,)), 20, 25.0, None)
        figures[pix_fmt] = point["psnr"]
    # measured: 4:2:0 cannot hold 1-pixel colour columns (12 dB), 4:4:4 can (43 dB, at fewer bytes)
    assert figures["yuv444p"] > figures["yuv420p"] + 10, figures
