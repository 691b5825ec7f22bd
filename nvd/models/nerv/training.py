"""NeRV-family training settings (config section ``nerv``): one frozen dataclass is the single
source of defaults, Boosting-NeRV's recipe (CVPR 2024).

Recipe: Adan (betas 0.98 / 0.92 / 0.99, no weight decay), batch 1, lr 3e-3 (1.5e-3 for
E-NeRV-Boost, the paper's value; ``lr`` unset picks the model's), 300 epochs, a linear
warm-up over the first 10% of the steps from 0.1 lr to lr, then a cosine to 0 (HNeRV's
``cosine_0.1_1_0.1`` schedule, see objective.warmup_cosine_lr).

Iterations and epochs. The shared loop (nvd.train.loop) counts iterations; here one iteration
is one optimiser step on ``batch_size`` frames (batch 1: one frame step). An epoch visits
every training frame once in a fresh shuffled order, so it has
``steps_per_epoch = ceil(n / batch_size)`` iterations for n training frames (all the frames
of the video; its even frames for interpolation), and a run ``epochs * steps_per_epoch``.
Iteration i (1-based) lies in epoch ``(i - 1) // steps_per_epoch`` (0-based). A log row
(loss, lr, PSNR and MS-SSIM over all training frames) is written every ``eval_every`` epochs,
at the end of the epoch, and a checkpoint every ``checkpoint_every`` epochs (and at the
end). ``loop_config(n)`` turns these into the loop's TrainConfig, whose ``seed`` and
``device`` come from the nested ``train`` keys (the only ones it may hold: the loop's
iteration counts follow from the epochs).

Losses (``loss``; unset: each model's own, from its paper):
- ``l2``: mean squared error (HNeRV's);
- ``l1``: mean absolute error;
- ``fusion``: 0.7 * L1 + 0.3 * (1 - SSIM), the "Fusion6" of the NeRV and HNeRV code, which
  NeRV and E-NeRV train with;
- ``boost``: Boosting-NeRV's 60 * (0.7 * L1 + 0.3 * (1 - MS-SSIM)) + L1 between the 2-D FFTs
  of prediction and target (its "Fusion10_freq"); the default of the three boosted models.
See losses.py for the exact terms.

Model. ``model`` names one of the six presets (nvd.models.nerv.config.MODEL_PRESETS); the
workflow passes the model folder as a wildcard (``nerv_train_config(values, model=...)``).
``model_size`` (millions of counted parameters) is solved for at the video's frame size.
``model_sizes`` (instead of model_size) trains every model at each size: the folders then say
their size, ``hnerv_boost_3M`` (nvd.models.nerv_model_folder), and a folder's size is the one
its run trains at; with one size the folder is the model's name alone. ``run_sections`` is the
part of the sections that shapes one folder's run (its model's per_model entry, its size):
the workflow's params, so editing one model's or size's settings reruns that folder only.
``regression: false`` trains no regression models: only the task sections' (see below).
``overrides`` (model-config fields) apply to whichever model is trained, ``per_model.<name>``
on top of them to that model only (e.g. ``per_model: {nerv: {stem_hidden: 128}}``), so one
section serves all six. Unless the overrides set them, the decoder ``strides`` (and HNeRV's
``enc_strides``) are derived from the frame size and the 9 x 16 grid
(geometry.strides_for): the papers' 5-2-2-2-2 at 1280x720 and 5-3-2-2-2 at 1920x1080.

Task sections: ``nerv_inpaint`` (``InpaintConfig``: the mask and an optional epoch count) and
``nerv_interpolate`` (``InterpolateConfig``: an optional epoch count); see tasks.py.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nvd.core.config import section
from nvd.core.errors import ConfigError
from nvd.models import NERV_TASKS, is_nerv_model_folder, nerv_model_folder, parse_nerv_model
from nvd.models.nerv.config import MODEL_PRESETS, HNeRVConfig, ModelConfig, model_config
from nvd.train.config import TrainConfig

LOSSES = ("l2", "l1", "fusion", "boost")
DEFAULT_LR = 3e-3
MODEL_LR = {"enerv_boost": 1.5e-3}  # the paper's lr where it differs from DEFAULT_LR
# Keys of the nested ``train`` section: the loop's iteration counts follow from the epochs.
TRAIN_KEYS = ("seed", "device")
MASKS = ("centre", "squares")
# Keys of the nerv section that say which runs the workflow makes, not how one run trains.
WORKFLOW_KEYS = ("model", "models", "model_sizes", "regression")
# task -> the section that turns it on (regression: nerv, unless nerv.regression is false)
TASK_SECTIONS = {"regression": "nerv", "inpaint": "nerv_inpaint", "interpolate": "nerv_interpolate"}


def default_loss(name: str) -> str:
    """The loss of model ``name``'s paper: boost for the boosted models, l2 for HNeRV, fusion
    (0.7 L1 + 0.3 (1 - SSIM)) for NeRV and E-NeRV."""
    if name.endswith("_boost"):
        return "boost"
    return "l2" if name == "hnerv" else "fusion"


def _check_models(key: str, models: tuple[str, ...] | None) -> None:
    if models is None:
        return
    unknown = sorted(set(models) - set(MODEL_PRESETS))
    if unknown or not models:
        raise ConfigError(f"{key}: expected a non-empty list of {sorted(MODEL_PRESETS)}, got {list(models)}")


def _is_size(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _positive_int(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"nerv.{name} must be an integer >= 1, got {value!r}")


@dataclass(frozen=True)
class NeRVTrainConfig:
    """NeRV-family training (config section ``nerv``); see the module docstring."""

    model: str = "hnerv_boost"  # one of MODEL_PRESETS: what nvd nerv-train trains by default
    models: tuple[str, ...] = tuple(MODEL_PRESETS)  # what the workflow trains, one run each
    model_size: float = 3.0  # target counted parameters in millions (solved at the frame size)
    model_sizes: tuple[float, ...] | None = None  # the workflow's sizes (instead of model_size)
    regression: bool = True  # the workflow trains nerv.models on whole videos
    overrides: Mapping[str, Any] = field(default_factory=dict)  # model-config fields, every model
    per_model: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # {name: fields}
    epochs: int = 300
    batch_size: int = 1  # frames per step
    lr: float | None = None  # None: DEFAULT_LR, or the model's MODEL_LR
    betas: tuple[float, float, float] = (0.98, 0.92, 0.99)  # Adan's
    weight_decay: float = 0.0
    warmup: float = 0.1  # fraction of the steps warming up linearly
    warmup_start: float = 0.1  # the warm-up's first lr, as a fraction of lr
    loss: str | None = None  # one of LOSSES; None: default_loss(model)
    eval_every: int = 1  # epochs between log rows (PSNR / MS-SSIM over all training frames)
    checkpoint_every: int = 10  # epochs between checkpoints
    train: TrainConfig = TrainConfig()  # only seed and device are read (see loop_config)

    def __post_init__(self) -> None:
        if self.model not in MODEL_PRESETS:
            raise ConfigError(f"nerv.model must be one of {sorted(MODEL_PRESETS)}, got {self.model!r}")
        _check_models("nerv.models", self.models)
        if not _is_size(self.model_size):
            raise ConfigError(f"nerv.model_size must be a number > 0 (millions), got {self.model_size!r}")
        if self.model_sizes is not None:
            sizes = self.model_sizes
            if not isinstance(sizes, tuple) or not sizes or not all(map(_is_size, sizes)) \
                    or len({float(v) for v in sizes}) != len(sizes):
                raise ConfigError(f"nerv.model_sizes must be a non-empty list of distinct numbers > 0 "
                                  f"(millions), got {sizes!r}")
            unnamed = [v for v in sizes if not is_nerv_model_folder(nerv_model_folder("nerv", v))]
            if unnamed:
                raise ConfigError(f"nerv.model_sizes: {unnamed} cannot name a model folder (hnerv_<size>M); "
                                  "give sizes between 0.0001 and 1e15 millions")
        if not isinstance(self.regression, bool):
            raise ConfigError(f"nerv.regression must be true or false, got {self.regression!r}")
        for name in ("overrides", "per_model"):
            if not isinstance(getattr(self, name), Mapping):
                raise ConfigError(f"nerv.{name} must be a mapping, got {getattr(self, name)!r}")
        unknown = sorted(set(self.per_model) - set(MODEL_PRESETS))
        if unknown:
            raise ConfigError(f"nerv.per_model: unknown model(s) {unknown}, expected some of "
                              f"{sorted(MODEL_PRESETS)}")
        for where, values in (("overrides", self.overrides),
                              *((f"per_model.{k}", v) for k, v in self.per_model.items())):
            if not isinstance(values, Mapping):
                raise ConfigError(f"nerv.{where} must be a mapping, got {values!r}")
            if "model_size" in values:
                raise ConfigError(f"nerv.{where}: set model_size at the top of the nerv section")
        for name in ("epochs", "batch_size", "eval_every", "checkpoint_every"):
            _positive_int(name, getattr(self, name))
        if self.lr is not None and not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr)
                                        and self.lr > 0):
            raise ConfigError(f"nerv.lr must be a finite number > 0 or null, got {self.lr!r}")
        if len(self.betas) != 3 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"nerv.betas must be three numbers in [0, 1), got {self.betas!r}")
        if not 0 <= self.weight_decay:
            raise ConfigError(f"nerv.weight_decay must be >= 0, got {self.weight_decay!r}")
        if not 0 <= self.warmup < 1:
            raise ConfigError(f"nerv.warmup must be in [0, 1), got {self.warmup!r}")
        if not 0 < self.warmup_start <= 1:
            raise ConfigError(f"nerv.warmup_start must be in (0, 1], got {self.warmup_start!r}")
        if self.loss is not None and self.loss not in LOSSES:
            raise ConfigError(f"nerv.loss must be one of {LOSSES} or null, got {self.loss!r}")
        self.model_config()  # unknown or bad model keys fail here, with the model's name

    @property
    def learning_rate(self) -> float:
        """``lr``, or the model's paper value when unset."""
        return float(self.lr) if self.lr is not None else MODEL_LR.get(self.model, DEFAULT_LR)

    @property
    def loss_name(self) -> str:
        """``loss``, or the model's own when unset (default_loss)."""
        return self.loss if self.loss is not None else default_loss(self.model)

    def model_overrides(self) -> dict[str, Any]:
        """The model-config fields set for ``model``: overrides, then per_model.<model>."""
        values = {**self.overrides, **self.per_model.get(self.model, {})}
        if isinstance(self.overrides.get("boost_cfg"), Mapping) and \
                isinstance(self.per_model.get(self.model, {}).get("boost_cfg"), Mapping):
            values["boost_cfg"] = {**self.overrides["boost_cfg"], **self.per_model[self.model]["boost_cfg"]}
        return values

    def model_config(self) -> ModelConfig:
        """The model's config (width unsolved): the preset, model_size and the overrides, with
        the strides left to the frame size unless the overrides set them."""
        values = self.model_overrides()
        values.setdefault("strides", None)
        if isinstance(MODEL_PRESETS[self.model], HNeRVConfig):
            values.setdefault("enc_strides", None)
        if isinstance(values.get("boost_cfg"), Mapping):
            values["boost_cfg"] = dict(values["boost_cfg"])
        return model_config(self.model, model_size=float(self.model_size), **values)

    @property
    def sizes(self) -> tuple[float, ...]:
        """The sizes (millions) the workflow trains every model at: model_sizes, else model_size."""
        return tuple(float(v) for v in (self.model_sizes or (self.model_size,)))

    def folders(self, models: tuple[str, ...] | list[str]) -> list[str]:
        """The regression folders of ``models`` at every size, size by size: the model names
        with one size, ``<model>_<size>M`` with several (nvd.models.nerv_model_folder)."""
        sized = len(self.sizes) > 1
        return [nerv_model_folder(m, size if sized else None) for size in self.sizes for m in models]

    def steps_per_epoch(self, train_frames: int) -> int:
        """Iterations per epoch on ``train_frames`` frames: ceil(train_frames / batch_size)."""
        if train_frames < 1:
            raise ConfigError("nerv: no frames to train on")
        return math.ceil(train_frames / self.batch_size)

    def iterations(self, train_frames: int) -> int:
        """Iterations of the whole run: epochs * steps_per_epoch."""
        return self.epochs * self.steps_per_epoch(train_frames)

    def loop_config(self, train_frames: int) -> TrainConfig:
        """The shared loop's settings for ``train_frames`` training frames (see the module
        docstring): iterations, log and checkpoint points at epoch ends, seed and device."""
        steps = self.steps_per_epoch(train_frames)
        return TrainConfig(iterations=self.epochs * steps, checkpoint_every=self.checkpoint_every * steps,
                           log_every=self.eval_every * steps, seed=self.train.seed, device=self.train.device)

    def with_epochs(self, epochs: int | None) -> "NeRVTrainConfig":
        """This config trained for ``epochs`` epochs (None: unchanged)."""
        return self if epochs is None else dataclasses.replace(self, epochs=epochs)


def _folder_size(values: Mapping[str, Any], folder: str) -> tuple[str, float | None]:
    """(model, size) of the run of model folder ``folder`` under the section ``values``: the
    folder's own size, else the section's one size (None: model_size's default)."""
    try:
        model, size = parse_nerv_model(folder)
    except ValueError as exc:
        raise ConfigError(f"nerv: {exc}") from None
    if size is None and values.get("model_sizes") is not None:
        sizes = list(values["model_sizes"])
        if len(sizes) > 1:
            raise ConfigError(f"nerv.model_sizes lists several sizes {sizes}: name the model with its size, "
                              f"e.g. {nerv_model_folder(model, sizes[0])} (nvd nerv-train: --model-size)")
        size = sizes[0]
    if size is None and values.get("model_size") is not None:
        size = values["model_size"]
    return model, None if size is None else float(size)


def nerv_train_config(values: Mapping[str, Any] | None, model: str | None = None,
                      name: str = "nerv") -> NeRVTrainConfig:
    """The ``nerv`` section as written -> NeRVTrainConfig. ``model`` (the workflow's model
    folder wildcard, the CLI's --model) replaces the section's ``model`` key; a folder with a
    size (``hnerv_3M``) trains at that size. With several ``model_sizes`` a model without a size
    is refused (which size would it be?)."""
    values = dict(values or {})
    extra = sorted(set(values.get("train") or {}) - set(TRAIN_KEYS))
    if extra:
        raise ConfigError(f"config section '{name}.train': key(s) {extra} are not used by the NeRV "
                          f"family (its steps follow from epochs, eval_every and checkpoint_every); "
                          f"known: {list(TRAIN_KEYS)}")
    if "model_size" in values and values.get("model_sizes") is not None:
        raise ConfigError(f"config section '{name}': set model_size (one size) or model_sizes (several), "
                          "not both")
    if model is not None:
        values["model"], size = _folder_size(values, model)
        values.pop("model_sizes", None)
        if size is not None:
            values["model_size"] = size
    for key in ("overrides", "per_model"):  # mappings stay mappings (section() would try a dataclass)
        if values.get(key) is None:
            values.pop(key, None)
    return section(NeRVTrainConfig, values, name)


def run_sections(config: Mapping[str, Any], folder: str, *tasks: str) -> dict[str, dict[str, Any]]:
    """What shapes the run of model folder ``folder`` (regression folder name, e.g.
    ``hnerv_3M``): the ``nerv`` section with the workflow's keys (WORKFLOW_KEYS) dropped, its
    size set and ``per_model`` cut to its model, and the sections of ``tasks`` (section names,
    e.g. ``nerv_inpaint``) without their ``models``. The jobs read these (as the config's own
    sections, nerv_train_config(sections["nerv"], model=folder)); the workflow's params, so
    another model's or size's settings never rerun this folder."""
    values = dict(config.get("nerv") or {})
    nerv_train_config(values)  # the section's own errors first, with their key names
    model, size = _folder_size(values, folder)
    run = {k: v for k, v in values.items() if k not in WORKFLOW_KEYS and k not in ("model_size", "per_model")}
    if size is not None:
        run["model_size"] = size
    own = (values.get("per_model") or {}).get(model)
    if own:
        run["per_model"] = {model: own}
    sections = {"nerv": run}
    for task in tasks:
        sections[task] = {k: v for k, v in (config.get(task) or {}).items() if k != "models"}
    return sections


def task_folders(config: Mapping[str, Any], task: str) -> list[str]:
    """The regression folders (``{nerv_model}`` values) the workflow trains for ``task`` (a key
    of NERV_TASKS; the task's own folders append its suffix, nvd.models.nerv_method): none
    unless the task's section is in ``config`` (regression: and nerv.regression is true); else
    the task section's ``models`` (default nerv.models) at every size."""
    if task not in NERV_TASKS:
        raise ConfigError(f"nerv: unknown task {task!r}, expected one of {list(NERV_TASKS)}")
    if TASK_SECTIONS[task] not in config:
        return []
    cfg = nerv_train_config(config.get("nerv"))
    if task == "regression":
        return cfg.folders(cfg.models) if cfg.regression else []
    task_cfg = inpaint_config(config.get("nerv_inpaint")) if task == "inpaint" else \
        interpolate_config(config.get("nerv_interpolate"))
    return cfg.folders(task_cfg.models or cfg.models)


@dataclass(frozen=True)
class InpaintConfig:
    """Inpainting (section ``nerv_inpaint``): train on frames with holes, the loss only on the
    pixels outside them; score the full frames and the holes against the original."""

    mask: str = "centre"  # "centre" or "squares", see tasks.inpaint_mask
    epochs: int | None = None  # None: nerv.epochs
    models: tuple[str, ...] | None = None  # the workflow's runs; None: nerv.models

    def __post_init__(self) -> None:
        _check_models("nerv_inpaint.models", self.models)
        if self.mask not in MASKS:
            raise ConfigError(f"nerv_inpaint.mask must be one of {MASKS}, got {self.mask!r}")
        if self.epochs is not None:
            _positive_int("epochs (nerv_inpaint)", self.epochs)


@dataclass(frozen=True)
class InterpolateConfig:
    """Frame interpolation (section ``nerv_interpolate``): train on the even frames, score
    the odd ones beside linear blending of their two neighbours."""

    epochs: int | None = None  # None: nerv.epochs
    models: tuple[str, ...] | None = None  # the workflow's runs; None: nerv.models

    def __post_init__(self) -> None:
        _check_models("nerv_interpolate.models", self.models)
        if self.epochs is not None:
            _positive_int("epochs (nerv_interpolate)", self.epochs)


def inpaint_config(values: Mapping[str, Any] | None) -> InpaintConfig:
    return section(InpaintConfig, values, "nerv_inpaint")


def interpolate_config(values: Mapping[str, Any] | None) -> InterpolateConfig:
    return section(InterpolateConfig, values, "nerv_interpolate")
