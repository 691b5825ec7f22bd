"""The papers' published figures our tables are set beside (nvd.eval.paper_tables).

Source: the reference digests (../shared/reference/nvd.md and nvr.md), which gather them from
the HyperNVD, NVP and Boosting-NeRV papers, their READMEs and plots. A figure the digests do
not give is absent here and shows as "n/a" in the tables, never as a guess.
"""

from __future__ import annotations

# HyperNVD (CVPR 2025), DAVIS: 30 training videos, 10 unseen ones, finetuning vs scratch.
HYPERNVD = {
    "psnr_gain_at_equal_time_db": 0.8,  # finetuning above scratch at equal time
    "time_ratio": 20 / 120,  # time to reach scratch's PSNR: ~2 h -> 20 min (6x)
}

# NVP (NeurIPS 2022), UVG-HD (7 videos 1920x1080, 600 frames; 300 for ShakeNDry), one V100:
# (encoding time label, seconds, bpp, PSNR, FLIP, LPIPS).
NVP_UVG = (
    ("~5 min", 300, 0.901, 34.57, 0.075, 0.190),
    ("~10 min", 600, 0.901, 35.79, 0.065, 0.160),
    ("~1 h", 3600, 0.901, 37.61, 0.052, 0.145),
    ("~8 h", 28800, 0.210, 36.46, 0.067, 0.135),
)

# Boosting-NeRV (CVPR 2024), Big Buck Bunny 1280x720: PSNR at the first and last points of
# its PSNR-vs-encoding-time figure (read off the README's plots).
BOOSTING_BUNNY_PSNR = {
    "nerv": (29.1, 30.2), "nerv_boost": (33.7, 35.35),
    "enerv": (33.45, 36.7), "enerv_boost": (37.25, 39.45),
    "hnerv": (35.1, 37.0), "hnerv_boost": (37.75, 39.65),
}
BOOSTING_BUNNY_HOURS = {"hnerv_boost": (0.7, 11.5)}  # the only times the digest gives

# Boosting-NeRV's rate-distortion curves on bunny (with its entropy coding): PSNR at a rate.
BOOSTING_BUNNY_RD = {
    0.05: {"hnerv_boost": 36.9, "hnerv": 33.65},
    0.10: {"hnerv_boost": 39.55, "hnerv": 36.75, "nerv": 31.9},
}

# HNeRV on UVG (its own csv): (bpp, PSNR).
HNERV_UVG = ((0.0139, 32.77), (0.0339, 34.39), (0.0498, 35.49))
