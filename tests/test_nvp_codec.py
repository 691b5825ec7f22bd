"""NVP's codec path: plane mosaics, JPEG/HEVC-coded features with a bounded error, a file that
decodes alone to exactly the frames the compress job scored."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import TINY_NVP, smooth_clip, write_frames_store

from nvd.compression.container import from_bytes, read_container, to_bytes
from nvd.core.errors import ConfigError
from nvd.eval.outputs import to_uint8
from nvd.models.nvp.codec import BLOCK, decode_nvp, encode_nvp, mosaic_layout, pack_plane, render_nvp, unpack_plane
from nvd.models.nvp.codec_config import NVPPoint, nvp_codec_config
from nvd.models.nvp.compress import compress_nvp
from nvd.models.nvp.config import nvp_train_config
from nvd.models.nvp.model import NVP
from nvd.models.nvp.quantise import quantise_features
from nvd.models.nvp.run import train_nvp_run


def smooth_model(frames=5, height=20, width=28) -> NVP:
    """A small NVP whose features are smooth fields (as trained features are), not noise."""
    torch.manual_seed(0)
    cfg = nvp_train_config(json.loads(json.dumps(TINY_NVP))).model
    model = NVP(frames, height, width, cfg)
    with torch.no_grad():
        for plane, shapes in enumerate(model.planes.shapes):
            for level, (rows, cols) in enumerate(shapes):
                r, c = torch.meshgrid(torch.linspace(0, 1, rows), torch.linspace(0, 1, cols), indexing="ij")
                image = model.planes.level(plane, level)  # a view of the table [F, rows, cols]
                for f in range(image.shape[0]):
                    image[f] = torch.sin(2 * r + 3 * c + f + level) * 0.3
        t, r, c = torch.meshgrid(*(torch.linspace(0, 1, n) for n in model.sparse.grid.shape[:3]), indexing="ij")
        fields = [torch.sin(3 * r + 2 * c + t), torch.cos(2 * r - c) * 0.5]
        model.sparse.grid.copy_(torch.stack(fields[:model.sparse.features], dim=-1) * 0.1)
    return model


def test_mosaic_tiles_sit_on_the_block_grid_and_unpack_exactly():
    shapes = ((4, 4), (6, 9), (13, 21))
    tiles, height, width = mosaic_layout(shapes, features=2)
    assert len(tiles) == 6 and width % BLOCK == 0 and width >= 21 and height % BLOCK == 0
    assert all(t.top % BLOCK == 0 for t in tiles)
    assert [(t.level, t.feature) for t in tiles] == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (t.rows, t.cols), dtype=np.uint8) for t in tiles]
    mosaic = pack_plane(images, tiles, height, width)
    for image, back in zip(images, unpack_plane(mosaic, tiles)):
        np.testing.assert_array_equal(image, back)
    # padding replicates the edge, so blocks past a tile's border cost almost nothing
    first = tiles[0]
    assert np.all(mosaic[first.top:first.top + first.rows, first.cols:] == images[0][:, -1:])


def test_coded_features_stay_near_their_8_bit_codes_and_the_decoder_is_exact():
    model = smooth_model()
    cfg = nvp_codec_config(None)
    encoded = from_bytes(to_bytes(encode_nvp(model, NVPPoint((2, 2, 2), 18), cfg, fps=25)))
    decoded = decode_nvp(encoded)
    for name, tensor in model.decoder.state_dict().items():
        assert torch.equal(tensor, decoded.decoder.state_dict()[name]), name
    # every coded value within a few 8-bit steps of its code (tiny 4x4 tiles are the worst)
    before, after = quantise_features(model), quantise_features(decoded)
    errors = []
    for a, b in zip((*before.levels, before.sparse), (*after.levels, after.sparse)):
        step = (a.high - a.low) / 255
        errors.append(((a.dequantise() - b.dequantise()).abs() / step[:, None]).flatten())
    errors = torch.cat(errors)
    assert float(errors.mean()) < 2 and float(errors.max()) <= 10

def test_coarser_points_give_smaller_files():
    model = smooth_model(frames=8, height=32, width=48)
    cfg = nvp_codec_config(None)
    sizes = [len(to_bytes(encode_nvp(model, NVPPoint(q, crf), cfg, fps=25)))
             for q, crf in (((2, 2, 2), 15), ((5, 5, 5), 30), ((20, 20, 20), 45))]
    assert sizes[0] > sizes[1] > sizes[2]
    half = nvp_codec_config({"decoder_dtype": "float16"})
    decoder_values = sum(p.numel() for p in model.decoder.parameters())
    full, halved = (len(to_bytes(encode_nvp(model, NVPPoint(), c, 25))) for c in (cfg, half))
    assert full - halved == pytest.approx(2 * decoder_values, abs=64)  # float16 halves the decoder


def test_points_are_named_and_checked():
    cfg = nvp_codec_config({"points": [{"qscale": 4, "crf": 22.5}, {"qscale": [2, 3, 3], "crf": 21}]})
    assert cfg.point_names() == ["q4-4-4_crf22p5", "q2-3-3_crf21"]
    assert cfg.point("q2-3-3_crf21").qscale == (2, 3, 3)
    with pytest.raises(ConfigError, match="no point 'q9'.*q4-4-4_crf22p5"):
        cfg.point("q9")
    with pytest.raises(ConfigError, match="qscale must be 3 integers"):
        nvp_codec_config({"points": [{"qscale": [2, 3], "crf": 21}]})
    with pytest.raises(ConfigError, match="crf must lie in 0..51"):
        nvp_codec_config({"points": [{"crf": 60}]})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny NVP trained on a smooth clip, with its frames store."""
    root = tmp_path_factory.mktemp("nvp_codec")
    frames = smooth_clip(6, 24, 32)
    store = write_frames_store(root / "frames.zarr", frames)
    cfg = nvp_train_config({**json.loads(json.dumps(TINY_NVP)), "budgets": [],
                            "train": {"iterations": 60, "checkpoint_every": 60, "log_every": 30, "device": "cpu"}})
    train_nvp_run(frames, store, cfg, root / "work", root / "model.pt")
    return root, store


def test_compress_job_scores_exactly_what_nvd_decode_rebuilds_from_the_file(trained, tmp_path):
    root, store = trained
    out = tmp_path / "compress" / "q2-3-3_crf21"
    metrics = compress_nvp(root / "model.pt", store, out, nvp_codec_config(None), "q2-3-3_crf21", device="cpu")
    point = metrics["points"][0]
    stream = out / "stream.nvd"
    assert point["bytes"] == stream.stat().st_size and point["bits"] == 8 * point["bytes"]
    assert point["bpp"] == pytest.approx(point["bits"] / (6 * 24 * 32))
    assert point["psnr"] > 20 and abs(point["psnr"] - point["psnr_8bit"]) < 1.5  # the coding costs little here
    assert point["decode_fps"] > 0 and point["decode_peak_mb"] > 0
    assert metrics["method"] == "nvp" and metrics["kind"] == "neural" and (out / "rec.mp4").is_file()

    # the file alone, in another process, gives exactly the frames that were scored
    exact = tmp_path / "decoded.npy"
    subprocess.run([sys.executable, "-m", "nvd.cli", "decode", str(stream), str(exact)], check=True)
    in_process = render_nvp(read_container(stream))
    np.testing.assert_array_equal(np.load(exact), to_uint8(in_process))
    first, second = decode_nvp(read_container(stream)), decode_nvp(read_container(stream))
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values()):
        assert torch.equal(a, b), name
    assert math.isfinite(metrics["points"][0]["encode_time_s"])


def test_compress_job_refuses_an_unknown_point(trained, tmp_path):
    root, store = trained
    with pytest.raises(ConfigError, match="no point 'fast'"):
        compress_nvp(root / "model.pt", store, tmp_path / "out", nvp_codec_config(None), "fast", device="cpu")
    assert not (tmp_path / "out").exists()
