"""Embedding stage: windowing, the weight-free stats descriptor, and VideoMAE through the
real loading path with a tiny random model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nvd.core.errors import ConfigError, WeightsError
from nvd.data.embedding import EmbeddingConfig, compute_embedding, load_embedding, window_starts
from nvd.data.embedding.stats import STATS_DIM, stats_descriptor
from nvd.data.stores import new_array, open_store, write_store
from nvd.data.weights import WeightsConfig

NO_WEIGHTS = WeightsConfig()


def random_video(n_frames: int, size: tuple[int, int] = (36, 48), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n_frames, *size, 3), dtype=np.uint8)


def make_frames(path: Path, video: np.ndarray) -> Path:
    """A frames store holding ``video`` uint8 [T,H,W,3], as decoded from a video file."""
    with write_store(path, "frames", config={}, code_version="test") as group:
        new_array(group, "frames", video.shape, "uint8", (1, *video.shape[1:]), ("t", "y", "x", "c"))[...] = video
        group.attrs.update(
            fps=25.0,
            source="test.mp4",
            frame_indices=list(range(len(video))),
            source_frame_names=None,
            source_size=list(video.shape[1:3]),
            size=list(video.shape[1:3]),
        )
    return path


def embed(tmp_path: Path, video: np.ndarray, name: str = "e", weights: WeightsConfig = NO_WEIGHTS, **cfg) -> Path:
    frames = make_frames(tmp_path / f"{name}-frames.zarr", video)
    return compute_embedding(frames, tmp_path / f"{name}.zarr", EmbeddingConfig(**cfg), weights)


def test_window_starts():
    assert window_starts(20, 8) == [0, 8, 16]  # last window partial: padded
    assert window_starts(20, 8, 4) == [0, 4, 8, 12]  # 12..19 reaches the end
    assert window_starts(5, 8) == [0]  # shorter than a window
    assert window_starts(20, 4, 10) == [0, 10]  # never starts past the end


def test_stats_store_and_determinism(tmp_path):
    video = random_video(20)
    first = embed(tmp_path, video, "a", window=8, stride=4)
    second = embed(tmp_path, video, "b", window=8, stride=4)
    windows, mean = load_embedding(first)
    assert windows.dtype == np.float32 and windows.shape == (4, STATS_DIM) and STATS_DIM == 64
    assert mean.dtype == np.float32 and mean.shape == (64,)
    np.testing.assert_allclose(mean, windows.mean(axis=0), rtol=1e-6)
    assert ((windows >= 0) & (windows <= 1)).all()
    attrs = open_store(first, "embedding").attrs
    assert (attrs["backend"], attrs["dim"], attrs["window"], attrs["window_starts"]) == ("stats", 64, 8, [0, 4, 8, 12])
    assert all(x.tobytes() == y.tobytes() for x, y in zip(load_embedding(first), load_embedding(second)))


def test_stats_depends_on_the_video(tmp_path):
    video = random_video(8)
    changed = video.copy()
    changed[4:, :18] //= 2  # darker top half in the second half of the clip
    base, _ = load_embedding(embed(tmp_path, video, "a", window=8))
    other, _ = load_embedding(embed(tmp_path, changed, "b", window=8))
    assert not np.array_equal(base, other)
    static, _ = load_embedding(embed(tmp_path, np.repeat(video[:1], 8, axis=0), "c", window=8))
    assert static[0, 55] == 0 and base[0, 55] > 0  # mean temporal difference


def test_short_last_window_repeats_last_frame(tmp_path):
    video = random_video(10)
    windows, _ = load_embedding(embed(tmp_path, video, window=8))
    assert windows.shape == (2, 64)
    padded = np.concatenate([video[8:], np.repeat(video[-1:], 6, axis=0)])
    assert windows[1].tobytes() == stats_descriptor(padded).tobytes()


def test_bad_window_settings(tmp_path):
    with pytest.raises(ConfigError, match="embedding.stride"):
        embed(tmp_path, random_video(4), window=2, stride=0)


@pytest.fixture(scope="module")
def videomae_dir(tmp_path_factory) -> Path:
    """A tiny random VideoMAE (4 frames, 32 px, D = 32) saved like a real local checkpoint."""
    import torch
    from transformers import VideoMAEConfig, VideoMAEImageProcessor, VideoMAEModel

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("videomae")
    config = VideoMAEConfig(
        image_size=32, patch_size=16, num_frames=4, tubelet_size=2, hidden_size=32,
        num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
    )  # fmt: skip
    VideoMAEModel(config).save_pretrained(folder)
    VideoMAEImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def test_videomae_backend(tmp_path, videomae_dir):
    weights = WeightsConfig(videomae=str(videomae_dir))
    video = random_video(10)
    cfg = dict(backend="videomae", window=4, batch_size=2, device="cpu")
    first = embed(tmp_path, video, "a", weights, **cfg)
    windows, mean = load_embedding(first)
    assert windows.shape == (3, 32) and windows.dtype == np.float32 and mean.shape == (32,)
    assert np.isfinite(windows).all() and not np.array_equal(windows[0], windows[1])
    attrs = open_store(first, "embedding").attrs
    assert (attrs["dim"], attrs["window_starts"]) == (32, [0, 4, 8])
    again, _ = load_embedding(embed(tmp_path, video, "b", weights, **{**cfg, "batch_size": 1}))
    np.testing.assert_allclose(again, windows, rtol=1e-5, atol=1e-6)  # batching does not change results


def test_videomae_window_must_match_model(tmp_path, videomae_dir):
    weights = WeightsConfig(videomae=str(videomae_dir))
    with pytest.raises(ConfigError, match="embedding.window.*num_frames = 4"):
        embed(tmp_path, random_video(8), weights=weights, backend="videomae", window=8)


def test_videomae_missing_weights(tmp_path, videomae_dir):
    missing = WeightsConfig(videomae=str(tmp_path / "absent"))
    with pytest.raises(WeightsError, match=r"weights\.videomae.*absent"):
        embed(tmp_path, random_video(4), weights=missing, backend="videomae", window=4)
    partial = tmp_path / "no-processor"
    partial.mkdir()
    (partial / "config.json").write_bytes((videomae_dir / "config.json").read_bytes())
    with pytest.raises(WeightsError, match="preprocessor_config.json"):
        embed(tmp_path, random_video(4), weights=WeightsConfig(videomae=str(partial)), backend="videomae", window=4)
