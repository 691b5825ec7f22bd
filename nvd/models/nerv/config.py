"""NeRV-family settings: one frozen dataclass per model is the single source of defaults.

Three model dataclasses (``NeRVConfig``, ``ENeRVConfig``, ``HNeRVConfig``) share the decoder
knobs of ``DecoderConfig``; ``boost=True`` turns each into its Boosting-NeRV variant (the
conditional decoder of ``boost.py``, configured by ``BoostConfig``). ``model_config(name)``
gives the six named presets with the public code's settings (Boosting-NeRV's bunny scripts,
HNeRV's 720p settings), e.g. ``model_config("hnerv_boost", model_size=0.75)``.

Mapping from the public command-line flags:
  ``--ks a_b_c``        -> kernel_min=b, kernel_max=c (stage i uses min(b + 2i, c)); ``a`` is the
                           encoder kernel of non-ConvNeXt encoders, unused here
  ``--enc_dim 64_16``   -> enc_dim=64, embed_channels=16
  ``--enc_strds``       -> enc_strides;  ``--dec_strds`` -> strides;  ``--dec_blks`` -> blocks
  ``--fc_hw 9_16``      -> grid=(9, 16) (rows, cols of the stem's feature map)
  ``--reduce``, ``--lower_width``, ``--act``, ``--out_bias`` -> reduce, lower_width, act,
                           out_activation;  ``--ch_t 32`` -> BoostConfig.time_dim
  ``--conv_type ... pshuffel_3x3`` -> BoostConfig.kernel_cap=3
  ``--modelsize``       -> model_size, but ours is the exact counted parameter count in millions
                           (size.py solves ``channel_width`` for it; the public scripts pass
                           a number that their closed-form estimate maps to the size)

``strides=None`` (and for HNeRV ``enc_strides=None``) derives the strides from the frame size
and ``grid`` (``geometry.strides_for``); ``blocks=None`` derives the blocks per stage
(``blocks.stage_blocks``). Both are resolved against the frame size when a model is built.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from nvd.core.errors import ConfigError

ACTIVATIONS = ("sin", "gelu", "relu", "silu", "leaky")
OUT_ACTIVATIONS = ("tanh", "sigmoid")  # tanh: tanh(x) * 0.5 + 0.5; both land in [0, 1]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int(prefix: str, name: str, value: object, minimum: int) -> None:
    if not _is_int(value) or value < minimum:  # type: ignore[operator]
        raise ConfigError(f"{prefix}: {name} must be an integer >= {minimum}, got {value!r}")


def _check_number(prefix: str, name: str, value: object, minimum: float, strict: bool) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        ok = value > minimum if strict else value >= minimum  # type: ignore[operator]
    if not ok:
        relation = ">" if strict else ">="
        raise ConfigError(f"{prefix}: {name} must be a number {relation} {minimum}, got {value!r}")


def _int_tuple(prefix: str, name: str, value: object, minimum: int, length: int | None = None
               ) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(f"{prefix}: {name} must be a non-empty list of integers, got {value!r}")
    for item in value:
        if not _is_int(item) or item < minimum:
            raise ConfigError(f"{prefix}: every entry of {name} must be an integer >= {minimum}, "
                              f"got {value!r}")
    if length is not None and len(value) != length:
        raise ConfigError(f"{prefix}: {name} must have {length} entries, got {value!r}")
    return tuple(value)


@dataclass(frozen=True)
class BoostConfig:
    """The conditional decoder shared by the three boosted models (see boost.py)."""

    time_levels: int = 80  # sinusoidal frequencies base**k * pi, k = 0..levels-1 (2 * levels values)
    time_base: float = 1.25
    time_hidden: int = 64  # the time MLP: 2 * time_levels -> time_hidden -> time_dim, sine
    time_dim: int = 32  # ch_t: width of the time embedding every TAT reads
    tat_hidden: int = 32  # hidden width of each TAT scale / shift net (public: = ch_t)
    kernel_cap: int = 3  # SNeRV conv kernels are min(stage kernel, kernel_cap) ("pshuffel_3x3")

    def __post_init__(self) -> None:
        for name in ("time_levels", "time_hidden", "time_dim", "tat_hidden", "kernel_cap"):
            _check_int("boost", name, getattr(self, name), 1)
        _check_number("boost", "time_base", self.time_base, 0, strict=True)
        if self.kernel_cap % 2 == 0:
            raise ConfigError(f"boost: kernel_cap must be odd, got {self.kernel_cap}")


@dataclass(frozen=True)
class DecoderConfig:
    """Decoder knobs shared by NeRV, E-NeRV and HNeRV (defaults overridden per model)."""

    family: ClassVar[str] = "decoder"
    # The integer field the size solver may adjust, after the width, to close the last rounding
    # gap (None: the width alone). See size.py.
    trim_field: ClassVar[str | None] = None

    boost: bool = False  # Boosting-NeRV's conditional decoder (SNeRV + TAT residual blocks)
    model_size: float = 3.0  # target counted parameters, in millions (see size.py)
    channel_width: float | None = None  # the solved width variable; None: solve from model_size
    strides: tuple[int, ...] | None = (5, 2, 2, 2, 2)  # decoder upsampling per stage
    blocks: tuple[int, ...] | None = None  # units per stage (first one upsamples); None: derived
    kernel_min: int = 3  # stage i's conv kernel is min(kernel_min + 2i, kernel_max)
    kernel_max: int = 3
    reduce: float = 2.0  # channel reduction per stage
    lower_width: int = 12  # no stage after the first is narrower than this
    act: str = "gelu"  # activation of the stem and the upsampling blocks
    out_activation: str = "tanh"
    size_tolerance: float = 0.02  # the solver's allowed relative miss of model_size
    boost_cfg: BoostConfig = BoostConfig()

    @property
    def name(self) -> str:
        """The preset name: the family, with ``_boost`` when boosted."""
        return f"{self.family}_boost" if self.boost else self.family

    def __post_init__(self) -> None:
        p = self.name
        if not isinstance(self.boost, bool):
            raise ConfigError(f"{p}: boost must be true or false, got {self.boost!r}")
        _check_number(p, "model_size", self.model_size, 0, strict=True)
        if self.channel_width is not None:
            _check_number(p, "channel_width", self.channel_width, 1, strict=False)
        if self.strides is not None:
            object.__setattr__(self, "strides", _int_tuple(p, "strides", self.strides, 1))
        if self.blocks is not None:
            object.__setattr__(self, "blocks", _int_tuple(p, "blocks", self.blocks, 1))
            if self.strides is not None and len(self.blocks) != len(self.strides):
                raise ConfigError(f"{p}: blocks {self.blocks} must have one entry per stage of "
                                  f"strides {self.strides}")
        for name in ("kernel_min", "kernel_max"):
            _check_int(p, name, getattr(self, name), 1)
            if getattr(self, name) % 2 == 0:
                raise ConfigError(f"{p}: {name} must be odd (same-size padding), got {getattr(self, name)}")
        if self.kernel_min > self.kernel_max:
            raise ConfigError(f"{p}: kernel_min {self.kernel_min} exceeds kernel_max {self.kernel_max}")
        _check_number(p, "reduce", self.reduce, 1, strict=False)
        _check_int(p, "lower_width", self.lower_width, 1)
        if self.act not in ACTIVATIONS:
            raise ConfigError(f"{p}: act must be one of {ACTIVATIONS}, got {self.act!r}")
        if self.out_activation not in OUT_ACTIVATIONS:
            raise ConfigError(f"{p}: out_activation must be one of {OUT_ACTIVATIONS}, "
                              f"got {self.out_activation!r}")
        if not isinstance(self.size_tolerance, float) or not 0 < self.size_tolerance < 1:
            raise ConfigError(f"{p}: size_tolerance must be in (0, 1), got {self.size_tolerance!r}")
        if not isinstance(self.boost_cfg, BoostConfig):
            raise ConfigError(f"{p}: boost_cfg must be a BoostConfig, got {self.boost_cfg!r}")

    def _check_positional(self) -> None:
        p = self.name
        _check_number(p, "pe_base", self.pe_base, 0, strict=True)  # type: ignore[attr-defined]
        _check_int(p, "pe_levels", self.pe_levels, 1)  # type: ignore[attr-defined]
        grid = _int_tuple(p, "grid", self.grid, 1, length=2)  # type: ignore[attr-defined]
        object.__setattr__(self, "grid", grid)


@dataclass(frozen=True)
class NeRVConfig(DecoderConfig):
    """NeRV (Chen et al. 2021): positional encoding of t -> MLP stem -> NeRV blocks.

    channel_width is fc_dim, the stem's channels per grid cell. lower_width defaults to 12
    (Boosting-NeRV's scripts) rather than NeRV's own 96, which alone costs more than 1M
    parameters at 720p and so rules out the small budgets.
    """

    family: ClassVar[str] = "nerv"
    trim_field: ClassVar[str | None] = "stem_hidden"

    act: str = "silu"  # NeRV's "swish"
    pe_base: float = 1.25
    pe_levels: int = 80  # 2 * 80 = 160 encoding values
    stem_hidden: int = 512  # width of the stem MLP's hidden layers (NeRV 512, NeRV-Boost 256)
    stem_layers: int = 1  # hidden layers in the stem MLP
    grid: tuple[int, int] = (9, 16)  # (rows, cols) of the stem's feature map (fc_h, fc_w)
    expansion: float = 1.0  # first stage width = channel_width * expansion

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_positional()
        _check_int(self.name, "stem_hidden", self.stem_hidden, 1)
        _check_int(self.name, "stem_layers", self.stem_layers, 0)
        _check_number(self.name, "expansion", self.expansion, 0, strict=True)


@dataclass(frozen=True)
class ENeRVConfig(DecoderConfig):
    """E-NeRV (Li et al. 2022): spatial/temporal disentangled stem + modulated NeRV blocks.

    channel_width is fc_dim, the width after the stem's projection. block_dim defaults to 128
    (Boosting-NeRV's scripts; E-NeRV's own default is 256).
    """

    family: ClassVar[str] = "enerv"
    trim_field: ClassVar[str | None] = "block_dim"

    pe_base: float = 1.25
    pe_levels: int = 80
    grid: tuple[int, int] = (9, 16)  # (rows, cols) of the spatial token grid
    block_dim: int = 128  # token width D of the stem's transformer blocks
    heads: tuple[int, int] = (1, 8)  # attention heads of the two transformer blocks
    dim_head: int = 64
    mlp_ratio: float = 0.5  # feed-forward width = block_dim * mlp_ratio
    t_hidden: int = 128  # E-NeRV's modulation branch: 2 * pe_levels -> t_hidden -> t_hidden
    expansion: float = 3.0  # first stage width = channel_width * expansion

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_positional()
        p = self.name
        _check_int(p, "block_dim", self.block_dim, 1)
        object.__setattr__(self, "heads", _int_tuple(p, "heads", self.heads, 1, length=2))
        _check_int(p, "dim_head", self.dim_head, 1)
        _check_int(p, "t_hidden", self.t_hidden, 1)
        _check_number(p, "mlp_ratio", self.mlp_ratio, 0, strict=True)
        _check_number(p, "expansion", self.expansion, 0, strict=True)


@dataclass(frozen=True)
class HNeRVConfig(DecoderConfig):
    """HNeRV (Chen et al. 2023): ConvNeXt encoder per frame -> small embedding -> decoder.

    channel_width is fc_dim, the width of the 1x1 conv on the embedding. ``grid`` is used only
    when enc_strides is None (derived strides keep the embedding grid rows x cols).
    """

    family: ClassVar[str] = "hnerv"

    kernel_min: int = 1  # ks 0_1_5: kernels 1, 3, 5, 5, 5
    kernel_max: int = 5
    reduce: float = 1.2
    enc_strides: tuple[int, ...] | None = (5, 2, 2, 2, 2)  # (5, 3, 2, 2, 2) for 1080p
    enc_dim: int = 64  # ConvNeXt width of every encoder stage but the last
    embed_channels: int = 16  # the last stage's width: channels of the embedding
    enc_blocks: int = 1  # ConvNeXt blocks per encoder stage
    enc_kernel: int = 7  # ConvNeXt depthwise kernel
    stem_kernel: int = 1  # kernel of the decoder's first conv on the embedding
    grid: tuple[int, int] = (9, 16)

    def __post_init__(self) -> None:
        super().__post_init__()
        p = self.name
        if self.enc_strides is not None:
            object.__setattr__(self, "enc_strides", _int_tuple(p, "enc_strides", self.enc_strides, 1))
        for name in ("enc_dim", "embed_channels", "enc_blocks"):
            _check_int(p, name, getattr(self, name), 1)
        for name in ("enc_kernel", "stem_kernel"):
            _check_int(p, name, getattr(self, name), 1)
            if getattr(self, name) % 2 == 0:
                raise ConfigError(f"{p}: {name} must be odd, got {getattr(self, name)}")
        object.__setattr__(self, "grid", _int_tuple(p, "grid", self.grid, 1, length=2))


ModelConfig = NeRVConfig | ENeRVConfig | HNeRVConfig

# The six presets: the boosted ones follow Boosting-NeRV's bunny scripts (sine activations,
# NeRV-Boost's 256-wide stem, the 3x3 kernel cap of BoostConfig).
MODEL_PRESETS: dict[str, ModelConfig] = {
    "nerv": NeRVConfig(),
    "nerv_boost": NeRVConfig(boost=True, act="sin", stem_hidden=256),
    "enerv": ENeRVConfig(),
    "enerv_boost": ENeRVConfig(boost=True, act="sin"),
    "hnerv": HNeRVConfig(),
    "hnerv_boost": HNeRVConfig(boost=True, act="sin"),
}


def model_config(name: str, **overrides: Any) -> ModelConfig:
    """The preset ``name`` (one of MODEL_PRESETS) with ``overrides`` applied.

    ``boost_cfg`` may be given as a mapping of BoostConfig fields. ``boost`` itself is set by
    the name and cannot be overridden.
    """
    if name not in MODEL_PRESETS:
        raise ConfigError(f"nerv: unknown model {name!r}, expected one of {sorted(MODEL_PRESETS)}")
    base = MODEL_PRESETS[name]
    known = {f.name for f in dataclasses.fields(base)} - {"boost"}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"{name}: unknown setting(s) {unknown}, expected some of {sorted(known)}")
    if isinstance(overrides.get("boost_cfg"), dict):
        boost_known = {f.name for f in dataclasses.fields(BoostConfig)}
        bad = sorted(set(overrides["boost_cfg"]) - boost_known)
        if bad:
            raise ConfigError(f"{name}: unknown boost_cfg setting(s) {bad}, "
                              f"expected some of {sorted(boost_known)}")
        overrides["boost_cfg"] = dataclasses.replace(base.boost_cfg, **overrides["boost_cfg"])
    return dataclasses.replace(base, **overrides)
