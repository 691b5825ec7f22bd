"""The codec benchmark's tables and plot from compressed folders with known figures."""

from __future__ import annotations

import csv
import json
import math

import pytest

from nvd.compression.benchmark import BenchmarkConfig, load_curves, write_benchmark, write_rd_plot
from nvd.core.errors import InputError

VIDEO = {"frames": 4, "height": 8, "width": 8, "fps": 25.0}
ANCHOR_RATES = (0.1, 0.2, 0.4, 0.8, 1.6)


def quality(rate: float) -> dict:
    """A concave rate-distortion law shared by every method: PSNR = 30 + 4 log2(rate / 0.1)."""
    return {"psnr": 30 + 4 * math.log2(rate / 0.1), "ms_ssim": 0.9 + 0.02 * math.log2(rate / 0.1),
            "lpips": None, "flip": 0.1}


def point(rate: float, at: float | None = None, **extra) -> dict:
    """A point of ``rate`` bpp with the quality the law gives at rate ``at`` (default: rate)."""
    bits = rate * 4 * 8 * 8
    return {"bytes": bits / 8, "bits": bits, "bpp": rate, **quality(at or rate), "encode_time_s": 2.0,
            "decode_fps": 100.0, "decode_peak_mb": 30.0, **extra}


def folder(root, name, metrics):
    path = root / name
    path.mkdir(parents=True)
    (path / "metrics.json").write_text(json.dumps({**VIDEO, **metrics}))
    return path


def video_folders(root, saving: float, shift: float = 0.0):
    """x265 (the reference), a neural method needing ``saving`` x its bits at equal quality
    (one folder per point, as the neural codecs write), and x264 on one folder."""
    anchor = folder(root, "x265", {"method": "x265_medium_yuv420p", "kind": "anchor",
                                   "points": [point(r, crf=20 + i) for i, r in enumerate(ANCHOR_RATES)]})
    other = folder(root, "x264", {"method": "x264_medium_yuv420p", "kind": "anchor",
                                  "points": [point(r * 1.25, r, crf=20 + i) for i, r in enumerate(ANCHOR_RATES)]})
    neural = []
    for i, rate in enumerate((0.15, 0.3, 0.6, 1.2)):
        p = point(rate * saving, rate)
        p["psnr"] += shift
        neural.append(folder(root, f"hnerv_{i}", {"method": "hnerv_boost", "kind": "neural", "point": f"bpp{i}",
                                                  "points": [p]}))
    return [anchor, other, *neural]


def test_curves_gather_a_method_s_folders_by_rate(tmp_path):
    curves = load_curves(list(reversed(video_folders(tmp_path, 0.8))))
    assert set(curves) == {"x265_medium_yuv420p", "x264_medium_yuv420p", "hnerv_boost"}
    neural = curves["hnerv_boost"]
    assert neural.kind == "neural" and [p["point"] for p in neural.points] == ["bpp0", "bpp1", "bpp2", "bpp3"]
    assert curves["x265_medium_yuv420p"].points[0]["point"] == "crf20"


def test_tables_give_known_bd_rates_and_means_over_videos(tmp_path):
    inputs = {"a": video_folders(tmp_path / "a", 0.8), "b": video_folders(tmp_path / "b", 0.5)}
    out = {key: tmp_path / "tables" / name for key, name in
           (("csv", "b.csv"), ("markdown", "b.md"), ("bd_csv", "bd.csv"), ("bd_markdown", "bd.md"))}
    write_benchmark(inputs, out, BenchmarkConfig())
    bd = {row["method"]: row for row in csv.DictReader(out["bd_csv"].open())}
    # 0.8x and 0.5x the reference's bits at equal quality: -20% and -50%, mean -35%
    assert float(bd["hnerv_boost"]["bd_rate_psnr_a"]) == pytest.approx(-20, abs=0.01)
    assert float(bd["hnerv_boost"]["bd_rate_psnr_b"]) == pytest.approx(-50, abs=0.01)
    assert float(bd["hnerv_boost"]["bd_rate_psnr"]) == pytest.approx(-35, abs=0.01)
    assert float(bd["x264_medium_yuv420p"]["bd_rate_ms_ssim"]) == pytest.approx(25, abs=0.01)
    # at equal rate the law gives 4 log2(1 / saving) dB more: +1.29 and +4 dB, mean +2.64
    assert float(bd["hnerv_boost"]["bd_psnr_a"]) == pytest.approx(4 * math.log2(1 / 0.8), abs=1e-3)
    assert float(bd["hnerv_boost"]["bd_psnr"]) == pytest.approx((4 * math.log2(1 / 0.8) + 4) / 2, abs=1e-3)
    assert "x265_medium_yuv420p" not in bd  # the reference is not compared with itself
    rows = list(csv.DictReader(out["csv"].open()))
    assert [r["kind"] for r in rows[:4]] == ["neural"] * 4  # neural methods first
    first = rows[0]
    assert first["method"] == "hnerv_boost" and first["videos"] == "2"
    assert float(first["bpp"]) == pytest.approx((0.15 * 0.8 + 0.15 * 0.5) / 2)
    assert "| hnerv_boost | bpp0 |" in out["markdown"].read_text()
    assert "-35.0%" in out["bd_markdown"].read_text()


def test_a_curve_that_never_meets_the_reference_in_quality_has_no_bd_rate_but_a_bd_psnr(tmp_path):
    folders = video_folders(tmp_path, 0.8, shift=100.0)  # far above every anchor point, at the same rates
    out = {key: tmp_path / f"{key}.txt" for key in ("csv", "markdown", "bd_csv", "bd_markdown")}
    write_benchmark({"v": folders}, out, BenchmarkConfig())
    bd = {row["method"]: row for row in csv.DictReader(out["bd_csv"].open())}
    assert bd["hnerv_boost"]["bd_rate_psnr"] == "nan" and bd["hnerv_boost"]["videos_bd_rate_psnr"] == "0"
    assert float(bd["hnerv_boost"]["bd_psnr"]) == pytest.approx(100 + 4 * math.log2(1 / 0.8), abs=1e-3)
    assert bd["hnerv_boost"]["videos_bd_psnr"] == "1"
    assert "no overlap" in out["bd_markdown"].read_text()


def test_a_missing_reference_anchor_is_named(tmp_path):
    folders = video_folders(tmp_path, 0.8)
    out = {key: tmp_path / f"{key}.txt" for key in ("csv", "markdown", "bd_csv", "bd_markdown")}
    with pytest.raises(InputError, match="reference anchor 'x265_slow_yuv444p'.*benchmark.reference"):
        write_benchmark({"v": folders}, out, BenchmarkConfig(reference="x265_slow_yuv444p"))
    assert not any(path.exists() for path in out.values())


def test_the_rd_plot_is_a_png(tmp_path):
    path = write_rd_plot("v", video_folders(tmp_path, 0.8), tmp_path / "rd" / "v.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
