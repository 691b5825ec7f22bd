"""Synthetic scene definitions: a camera over a background atlas, and moving foreground objects.

Coordinates: a pixel's centre is at its integer (column, row) index, both in frames
(x, y) and in atlases (u, v); this is also OpenCV's ``remap`` convention. Points are
float64 arrays [..., 2] holding (x, y) or (u, v).

Each layer has, per frame, an invertible map between frame pixels and atlas pixels:
``to_atlas`` (frame -> atlas, used to render by inverse mapping and stored as the ground
truth uv) and ``to_frame`` (atlas -> frame, its exact analytic inverse, used for the
ground-truth optical flow). Time enters as ``tau`` = t / (T - 1) in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from nvd.data.demo.textures import background_texture, object_texture


class LayerMap(Protocol):
    """One layer's geometry at one frame."""

    def to_atlas(self, xy: np.ndarray) -> np.ndarray:
        """Frame points float64 [..., 2] (x, y) -> atlas points float64 [..., 2] (u, v)."""
        ...

    def to_frame(self, uv: np.ndarray) -> np.ndarray:
        """Atlas points float64 [..., 2] (u, v) -> frame points float64 [..., 2] (x, y)."""
        ...


def _rotation(angle: float) -> np.ndarray:
    """Rotation by ``angle`` radians, turning the x axis towards the y axis: float64 [2, 2]."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


@dataclass(frozen=True)
class AffineMap:
    """uv = linear @ xy + offset; the camera of a flat background."""

    linear: np.ndarray  # float64 [2, 2]
    offset: np.ndarray  # float64 [2]

    def to_atlas(self, xy: np.ndarray) -> np.ndarray:
        return xy @ self.linear.T + self.offset

    def to_frame(self, uv: np.ndarray) -> np.ndarray:
        return (uv - self.offset) @ np.linalg.inv(self.linear).T


@dataclass(frozen=True)
class WarpedSimilarityMap:
    """Similarity (place, rotate, scale) followed by a non-rigid sinusoidal warp.

    frame -> atlas: ``(p, q) = R(-angle) (xy - centre) / scale`` gives object coordinates
    in atlas pixels about the atlas centre; then two shears,
    ``u' = p + a sin(k q + phase)`` and ``v' = q + a sin(k u' + phase)``, bend the object
    smoothly; ``uv = (u', v') + atlas_centre``. Each shear is inverted exactly by
    subtracting the same term in reverse order, so ``to_frame`` is analytic and the map is
    a bijection for any amplitude (each shear has Jacobian determinant 1).
    """

    centre: np.ndarray  # float64 [2], frame pixels
    scale: float  # frame pixels per atlas pixel
    angle: float  # radians
    atlas_centre: np.ndarray  # float64 [2], atlas pixels
    amplitude: float  # atlas pixels
    wavenumber: float  # radians per atlas pixel
    phase: float  # radians

    def _wave(self, coord: np.ndarray) -> np.ndarray:
        return self.amplitude * np.sin(self.wavenumber * coord + self.phase)

    def to_atlas(self, xy: np.ndarray) -> np.ndarray:
        # Row vectors times R is R^T applied to each point, i.e. rotation by -angle.
        pq = (xy - self.centre) @ _rotation(self.angle) / self.scale
        u = pq[..., 0] + self._wave(pq[..., 1])
        v = pq[..., 1] + self._wave(u)
        return np.stack([u, v], axis=-1) + self.atlas_centre

    def to_frame(self, uv: np.ndarray) -> np.ndarray:
        u, v = np.moveaxis(uv - self.atlas_centre, -1, 0)
        q = v - self._wave(u)
        p = u - self._wave(q)
        return np.stack([p, q], axis=-1) @ _rotation(self.angle).T * self.scale + self.centre


@dataclass(frozen=True)
class BackgroundSpec:
    """A static textured atlas seen by a camera that pans, zooms and rolls linearly in time."""

    atlas_size: tuple[int, int]  # (Ha, Wa)
    seed: int
    # Atlas point (u, v) seen at the frame centre, first and last frame.
    look_at: tuple[tuple[float, float], tuple[float, float]]
    # Atlas pixels per frame pixel, first and last frame (smaller = zoomed in).
    zoom: tuple[float, float]
    roll: tuple[float, float]  # camera rotation in radians, first/last frame

    def texture(self) -> np.ndarray:
        """The atlas, float32 [Ha, Wa, 3] in [0, 1]."""
        return background_texture(self.atlas_size, self.seed)

    def at(self, tau: float, frame_size: tuple[int, int]) -> AffineMap:
        """The camera at time ``tau`` for frames of ``frame_size`` (H, W)."""
        h, w = frame_size
        frame_centre = np.array([(w - 1) / 2, (h - 1) / 2])
        look_at = (1 - tau) * np.asarray(self.look_at[0]) + tau * np.asarray(self.look_at[1])
        zoom = (1 - tau) * self.zoom[0] + tau * self.zoom[1]
        roll = (1 - tau) * self.roll[0] + tau * self.roll[1]
        linear = zoom * _rotation(roll)
        return AffineMap(linear, look_at - linear @ frame_centre)


@dataclass(frozen=True)
class ObjectSpec:
    """A textured elliptic object that travels, turns, pulses in size and wobbles.

    Its centre follows ``origin + drift * tau + sway * sin(2 pi sway_cycles tau + sway_phase)``
    (per axis, frame pixels); the object occupies the ellipse with semi-axes ``radii`` about
    the atlas centre, so its outline in the frame is that ellipse pushed through the warp.
    """

    name: str
    seed: int
    hue: float  # base hue of the texture, in turns
    origin: tuple[float, float]
    drift: tuple[float, float] = (0.0, 0.0)
    sway: tuple[float, float] = (0.0, 0.0)
    sway_cycles: float = 1.0
    sway_phase: tuple[float, float] = (0.0, 0.0)
    radii: tuple[float, float] = (26.0, 22.0)  # atlas pixels, along u and v
    atlas_size: int = 64  # square atlas side
    scale: tuple[float, float] = (0.75, 0.08)  # frame px per atlas px: mean, pulsation amplitude
    spin: float = 1.0  # rotation over the whole clip, radians
    wobble: float = 2.5  # warp amplitude, atlas pixels
    wobble_wavelength: float = 40.0  # atlas pixels
    wobble_cycles: float = 2.0  # warp phase turns over the clip

    def texture(self) -> np.ndarray:
        """The atlas, float32 [S, S, 3] in [0, 1]."""
        return object_texture(self.atlas_size, self.seed, self.hue)

    def at(self, tau: float) -> WarpedSimilarityMap:
        """The object's map at time ``tau``."""
        swing = np.sin(2 * np.pi * self.sway_cycles * tau + np.asarray(self.sway_phase))
        centre = np.add(self.origin, tau * np.asarray(self.drift)) + np.asarray(self.sway) * swing
        c = (self.atlas_size - 1) / 2
        return WarpedSimilarityMap(
            centre=centre,
            scale=self.scale[0] + self.scale[1] * np.sin(2 * np.pi * tau),
            angle=self.spin * tau,
            atlas_centre=np.array([c, c]),
            amplitude=self.wobble,
            wavenumber=2 * np.pi / self.wobble_wavelength,
            phase=2 * np.pi * self.wobble_cycles * tau,
        )

    def covers(self, uv: np.ndarray) -> np.ndarray:
        """Whether atlas points float64 [..., 2] lie on the object: bool [...]."""
        c = (self.atlas_size - 1) / 2
        du = (uv[..., 0] - c) / self.radii[0]
        dv = (uv[..., 1] - c) / self.radii[1]
        return du * du + dv * dv <= 1.0


@dataclass(frozen=True)
class SceneSpec:
    """A synthetic clip: frame size, length, camera and foreground objects.

    ``objects`` run front to back and their names sort in that order, so the sorted mask
    folders give the layer order.
    """

    size: tuple[int, int]  # (H, W)
    frames: int
    fps: float
    background: BackgroundSpec
    objects: tuple[ObjectSpec, ...]

    def __post_init__(self) -> None:
        names = [o.name for o in self.objects]
        if names != sorted(set(names)):
            raise ValueError(f"object names must be unique and sorted front to back, got {names}")

    def layer_maps(self, t: int) -> list[LayerMap]:
        """Maps of every layer at frame ``t``: objects front to back, background last."""
        tau = t / (self.frames - 1)
        return [o.at(tau) for o in self.objects] + [self.background.at(tau, self.size)]


SYNTHETIC_CLIPS: dict[str, SceneSpec] = {
    # One object circling the middle of the frame while the camera pans right/down and zooms in.
    "orbit": SceneSpec(
        size=(96, 128),
        frames=24,
        fps=24.0,
        background=BackgroundSpec(
            atlas_size=(160, 224),
            seed=11,
            look_at=((76.0, 62.0), (148.0, 98.0)),
            zoom=(1.0, 0.8),
            roll=(0.0, 0.08),
        ),
        objects=(
            ObjectSpec(
                name="object1",
                seed=21,
                hue=0.0,
                origin=(64.0, 48.0),
                sway=(34.0, 20.0),
                sway_cycles=0.6,
                sway_phase=(np.pi / 2, 0.0),
                spin=1.2,
            ),
        ),
    ),
    # Two objects crossing in opposite directions (the front one partly hides the other
    # mid-clip) while the camera pans left/up and zooms out.
    "duo": SceneSpec(
        size=(96, 128),
        frames=24,
        fps=24.0,
        background=BackgroundSpec(
            atlas_size=(160, 224),
            seed=12,
            look_at=((150.0, 96.0), (78.0, 64.0)),
            zoom=(0.8, 1.0),
            roll=(0.04, -0.04),
        ),
        objects=(
            ObjectSpec(
                name="object1",
                seed=31,
                hue=0.55,
                origin=(26.0, 40.0),
                drift=(76.0, 4.0),
                sway=(0.0, 6.0),
                scale=(0.7, 0.06),
                spin=1.2,
            ),
            ObjectSpec(
                name="object2",
                seed=32,
                hue=0.1,
                origin=(104.0, 60.0),
                drift=(-76.0, -4.0),
                sway=(0.0, -5.0),
                radii=(24.0, 20.0),
                scale=(0.7, 0.06),
                spin=-0.9,
                wobble_cycles=-1.5,
            ),
        ),
    ),
}


# The camera move every family clip shares: one rig, one pan-zoom-roll over one place.
_FAMILY_BACKGROUND = BackgroundSpec(
    atlas_size=(160, 224),
    seed=40,
    look_at=((84.0, 70.0), (140.0, 92.0)),
    zoom=(1.0, 0.85),
    roll=(-0.03, 0.04),
)


def _family_clip(seed: int) -> SceneSpec:
    """One clip of the HyperNVD demo family: the same camera move over the same place (a
    motion-control rig, or a fixed camera), with a different object moving through it.

    The family is what the hypernetwork trains across: the place and camera are what the
    clips share, each object (texture, colour, path, spin) is new. Family objects move
    rigidly (travel, turn, pulse in size) without orbit's wobble: at the demo's budget no
    decomposition, finetuned or from scratch, learned the wobble (object stuck near 21 dB in
    both), so the HyperNVD comparison measured that floor instead of the head start.
    """
    rng = np.random.default_rng(seed)

    def pick(lo: float, hi: float) -> float:
        return float(rng.uniform(lo, hi))

    return SceneSpec(
        size=(96, 128),
        frames=24,
        fps=24.0,
        background=_FAMILY_BACKGROUND,
        objects=(
            ObjectSpec(
                name="object1",
                seed=100 + seed,
                hue=pick(0.0, 1.0),
                origin=(pick(40, 88), pick(36, 60)),
                drift=(pick(-30, 30), pick(-15, 15)),
                sway=(pick(10, 24), pick(6, 14)),
                sway_cycles=pick(0.4, 0.8),
                sway_phase=(pick(0, np.pi), pick(0, np.pi)),
                spin=pick(-1.2, 1.2),
                wobble=0.0,
            ),
        ),
    )


# The HyperNVD demo family (configs split it into training and held-out clips).
FAMILY_CLIPS: dict[str, SceneSpec] = {
    name: _family_clip(seed) for seed, name in enumerate(("drift", "glide", "hover", "sweep", "roam", "swing"))
}
SYNTHETIC_CLIPS.update(FAMILY_CLIPS)
