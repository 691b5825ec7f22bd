"""The one optimisation loop every neural video model trains through.

A model family (layered atlases, NVP, the NeRV family) implements ``TrainTask``: its modules,
its optimiser, the loss of one step and a quick PSNR. ``train`` does everything else the same
way for all of them: optimiser steps, NaN/inf guard, atomic checkpoints, exact resume,
``log.csv`` (PSNR against training time, for equal-time comparisons), TensorBoard when
installed, and a progress bar or plain log lines.

Files in ``out_dir``:
- ``checkpoint.pt``: the latest checkpoint, replaced atomically (see ``train``);
- ``log.csv``: one row per log point (see nvd.train.logs.read_log);
- ``tensorboard/``: the same scalars as TensorBoard events, when ``torch.utils.tensorboard``
  imports.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from nvd.core.devices import resolve_device
from nvd.core.errors import NvdError
from nvd.core.layout import LOG_NAME
from nvd.core.publish import publish_with
from nvd.train.config import TrainConfig
from nvd.train.divergence import ParameterCheck, TrainingDiverged, diverged_message
from nvd.train.logs import LEAD_COLUMNS, PSNR_COLUMN, CsvLog, board_row, report, tensorboard

CHECKPOINT_NAME = "checkpoint.pt"
TENSORBOARD_DIR = "tensorboard"
_FORMAT = 1  # checkpoint layout version; bump when the dict written by _checkpoint_state changes
# Added to cfg.seed for the sampling generator, so that its stream differs from the global
# torch stream seeded with cfg.seed (which initialises the weights): batches drawn from the
# same numbers as the initial weights would be correlated with them.
_SAMPLING_SEED_OFFSET = 0x5EED_0FF5E7

_log = logging.getLogger(__name__)


class CheckpointError(NvdError):
    """``checkpoint.pt`` is unreadable or belongs to a different run."""


class TrainTask(Protocol):
    """What a model family provides to the shared loop.

    The task is built by the caller after ``seed_everything(cfg.seed)`` (so its initial
    weights are reproducible) with its tensors on ``resolve_device(cfg.device)``. Any state
    that changes during training must live in ``modules()`` (parameters or buffers) or in the
    optimiser, or be a function of the iteration number (e.g. a learning-rate schedule set in
    ``step_loss`` from ``iteration``): nothing else is checkpointed.
    """

    def modules(self) -> dict[str, nn.Module]:
        """Everything whose state is checkpointed, by a stable name."""
        ...

    def optimizer(self) -> torch.optim.Optimizer:
        """The optimiser over the modules' parameters; built once, the same object each call."""
        ...

    def step_loss(self, iteration: int, generator: torch.Generator) -> tuple[Tensor, dict[str, float]]:
        """Loss of training iteration ``iteration`` (1-based) as a scalar tensor with a graph,
        and its named parts as floats (one log.csv column each; names other than iteration,
        wall_time_s, loss and psnr). All randomness (batch sampling...) must come from
        ``generator``, which lives on the training device; ``train`` does the backward pass and
        the optimiser step.

        A task that accumulates gradients itself (HyperNVD backpropagates each video's loss
        before building the next video's graph) returns the total loss detached (no
        ``requires_grad``); ``train`` then only checks it and steps. A non-finite total still
        stops the run before the step."""
        ...

    def psnr(self) -> float | Mapping[str, float]:
        """Quick quality figure in dB for the logs (may use a fixed subset of frames). Runs
        under ``torch.no_grad``; must not draw from the sampling generator and must leave the
        modules in the mode it found them. A mapping holds the headline figure under "psnr"
        and more figures (e.g. per video) as extra log.csv columns."""
        ...


@dataclass(frozen=True)
class TrainResult:
    """What a call to ``train`` achieved."""

    iterations: int  # iterations the model has been trained for in total (cfg.iterations)
    wall_time_s: float  # cumulative training time over all sessions, as in log.csv
    psnr: float  # task.psnr() after the last iteration
    checkpoint: Path  # the final checkpoint
    resumed_from: int | None  # iteration of the checkpoint this call resumed from, None when fresh


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and all GPUs)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train(
    task: TrainTask,
    cfg: TrainConfig,
    out_dir: str | os.PathLike,
    *,
    identity: Mapping[str, Any] | None = None,
    meta: Mapping[str, Any] | None = None,
    log: logging.Logger | None = None,
) -> TrainResult:
    """Train ``task`` for ``cfg.iterations`` iterations, resuming from ``out_dir`` if possible.

    Each iteration: ``zero_grad``, ``task.step_loss``, a finiteness check, ``backward``,
    ``optimizer.step``, a finiteness check of the stepped parameters. Every ``cfg.log_every``
    iterations and at the end a row goes to ``log.csv`` (and TensorBoard); every ``cfg.checkpoint_every`` iterations and at the end
    ``checkpoint.pt`` is written: module and optimiser states, the iteration, the sampling
    generator's state, the global torch (and CUDA), NumPy and Python RNG states, the training
    time so far, ``identity`` and ``meta``. It is written to a temporary sibling and renamed
    over the old one, so a kill at any moment leaves either the old or the new checkpoint.

    Resume: when ``checkpoint.pt`` exists, its ``identity`` must equal ``identity`` (the
    values that define the run, e.g. its config, code version and video; JSON-normalised),
    else CheckpointError. Everything is restored and training continues after the saved
    iteration; log rows written after it by the interrupted session are dropped. On CPU the
    resumed run ends bit-for-bit equal to an uninterrupted one; on CUDA only as far as the
    kernels are deterministic. ``meta`` is stored for provenance and not compared.

    Wall time (``wall_time_s``) counts the training iterations only, summed over sessions:
    not start-up, checkpoint writes, log writes or ``task.psnr()``, and not the iterations an
    interrupted session did after its last checkpoint (they are done again).

    Raises TrainingDiverged when the loss is not finite (before stepping), or when a finite
    loss had a non-finite gradient and the step made a parameter NaN or infinite (the message
    names the module and parameter). Either way the last checkpoint stays the last good state:
    the parameters are checked after every step, and before every log row and checkpoint,
    so a non-finite parameter is never written. The check is one fused reduction per device,
    read at the host sync the next iteration's loss check does anyway (at once before a log
    row or checkpoint), so it adds no host-device synchronisation. CheckpointError for a
    foreign or unreadable checkpoint. ``log`` receives progress lines when stderr is not a
    terminal (default: this module's logger); on a terminal a tqdm bar shows loss and PSNR
    instead.
    """
    log = log or _log
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device)
    run_identity = _jsonable(identity or {})
    run_meta = _jsonable(meta or {})
    modules = task.modules()
    optimizer = task.optimizer()
    generator = torch.Generator(device=device)
    generator.manual_seed(cfg.seed + _SAMPLING_SEED_OFFSET)
    ckpt_path = out / CHECKPOINT_NAME

    start, wall, resumed_from = 0, 0.0, None
    if ckpt_path.exists():
        ckpt = _read_checkpoint(ckpt_path)
        _check_identity(ckpt_path, ckpt["identity"], run_identity)
        if ckpt["iteration"] > cfg.iterations:
            raise CheckpointError(
                f"{ckpt_path} is at iteration {ckpt['iteration']}, past the {cfg.iterations} iterations "
                "asked for; delete it (or use another output folder) to train a shorter run"
            )
        _restore(ckpt_path, ckpt, modules, optimizer, generator, device)
        start = resumed_from = ckpt["iteration"]
        wall = ckpt["wall_time_s"]
        log.info("resuming from %s at iteration %d/%d", ckpt_path, start, cfg.iterations)
    else:
        shutil.rmtree(out / TENSORBOARD_DIR, ignore_errors=True)
        log.info("training from scratch for %d iterations on %s", cfg.iterations, device)
    csv_log = CsvLog(out / LOG_NAME, keep_through=start)
    board = tensorboard(out / TENSORBOARD_DIR, start)
    bar = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=cfg.iterations, initial=start, desc="train", unit="it", dynamic_ncols=True)

    final_psnr = math.nan
    param_check = ParameterCheck(modules, optimizer)
    # (iteration, loss, flag) of the last step when its parameter check has not been read yet
    pending: tuple[int, Tensor, Tensor] | None = None
    try:
        tick = time.perf_counter()
        for it in range(start + 1, cfg.iterations + 1):
            # Gradients are cleared first (set to None) so they take no memory during the forward pass.
            optimizer.zero_grad(set_to_none=True)
            try:
                loss, parts = task.step_loss(it, generator)
            except Exception:
                if pending is not None:  # a task that fails on NaN parameters: say why
                    param_check.raise_if_diverged(*pending, ckpt_path)
                raise
            # One host sync per iteration (the float parts cost one already), which also reads
            # the previous step's parameter check; checking the loss before backward/step means
            # a NaN loss never reaches the parameters or the optimiser state.
            finite = torch.isfinite(loss)
            if pending is not None:
                finite = finite & pending[2].to(finite.device)  # a no-op on one device
            if not bool(finite):
                if pending is not None:
                    param_check.raise_if_diverged(*pending, ckpt_path)
                raise TrainingDiverged(diverged_message(it, loss, parts, ckpt_path))
            if loss.requires_grad:
                loss.backward()
            optimizer.step()
            pending = (it, loss.detach(), param_check.queue())
            if bar is not None:
                bar.update()
            at_log = it % cfg.log_every == 0 or it == cfg.iterations
            at_checkpoint = it % cfg.checkpoint_every == 0 or it == cfg.iterations
            if not (at_log or at_checkpoint):
                continue
            # Nothing is logged or checkpointed from a step that made a parameter non-finite.
            param_check.raise_if_diverged(*pending, ckpt_path)
            pending = None
            if device.type == "cuda":
                torch.cuda.synchronize(device)  # so the clock sees the queued kernels finish
            wall += time.perf_counter() - tick
            if at_log:
                clash = parts.keys() & {*LEAD_COLUMNS, PSNR_COLUMN}
                if clash:
                    raise ValueError(f"loss part names {sorted(clash)} are reserved for log.csv columns")
                figures = _eval_psnr(task)
                final_psnr = figures[PSNR_COLUMN]
                row = {
                    "iteration": it,
                    "wall_time_s": wall,
                    "loss": loss.item(),
                    **{name: float(value) for name, value in parts.items()},
                    **{name: value for name, value in figures.items() if name != PSNR_COLUMN},
                    PSNR_COLUMN: final_psnr,
                }
                csv_log.append(row)
                if board is not None:
                    board_row(board, row)
                report(log, bar, row, cfg.iterations)
            if at_checkpoint:
                state = _checkpoint_state(
                    it, wall, modules, optimizer, generator, device, run_identity, run_meta
                )
                _write_atomic(ckpt_path, state)
            tick = time.perf_counter()
    finally:
        if bar is not None:
            bar.close()
        if board is not None:
            board.close()

    if start == cfg.iterations:  # the run was already complete: nothing was logged in this call
        final_psnr = _eval_psnr(task)[PSNR_COLUMN]
    log.info("trained %d iterations in %.1f s of training time, PSNR %.2f dB", cfg.iterations, wall, final_psnr)
    return TrainResult(cfg.iterations, wall, final_psnr, ckpt_path, resumed_from)


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint at ``path`` as saved (on the CPU); CheckpointError when missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint does not exist; train the model first")
    return _read_checkpoint(path)


def write_snapshot(checkpoint: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Publish the model half of ``checkpoint`` at ``path``: its module states, iteration,
    training time, identity and meta, without the optimiser and RNG states (a third of the
    size for Adam). ``read_checkpoint`` and ``load_modules`` read it like a checkpoint."""
    ckpt = read_checkpoint(checkpoint)
    keep = {key: ckpt[key] for key in ("format", "modules", "iteration", "wall_time_s", "identity", "meta")}
    return publish_with(path, lambda tmp: torch.save(keep, tmp))


def load_modules(path: str | os.PathLike, modules: Mapping[str, nn.Module],
                 checkpoint: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Load the module states of the checkpoint at ``path`` into ``modules`` (for evaluation).

    ``modules`` must have the names the task's ``modules()`` had. Tensors are copied onto each
    module's own device. Pass ``checkpoint`` (from read_checkpoint) when it was already read.
    Returns the checkpoint's ``meta``. Raises CheckpointError.
    """
    ckpt = dict(checkpoint) if checkpoint is not None else read_checkpoint(path)
    _load_module_states(Path(path), ckpt, modules)
    return ckpt["meta"]


# ---------------------------------------------------------------------------- checkpoints


def _checkpoint_state(
    iteration: int,
    wall: float,
    modules: Mapping[str, nn.Module],
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    device: torch.device,
    identity: dict[str, Any],
    meta: dict[str, Any],
) -> dict[str, Any]:
    """Everything a resume needs, as types ``torch.load(weights_only=True)`` accepts."""
    np_state = np.random.get_state(legacy=False)
    return {
        "format": _FORMAT,
        "iteration": iteration,
        "wall_time_s": wall,
        "modules": {name: module.state_dict() for name, module in modules.items()},
        "optimizer": optimizer.state_dict(),
        "device_type": device.type,
        "generator": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "python_rng": random.getstate(),
        "numpy_rng": {
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": np_state["state"]["pos"],
            "has_gauss": np_state["has_gauss"],
            "gauss": np_state["gauss"],
        },
        "identity": identity,
        "meta": meta,
    }


def _write_atomic(path: Path, state: dict[str, Any]) -> None:
    """torch.save ``state`` to a temporary sibling, flush it to disk, move it onto ``path``."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())  # else a crash of the machine could rename an empty file into place

    publish_with(path, write)


def _read_checkpoint(path: Path) -> dict[str, Any]:
    try:
        # weights_only: a checkpoint is plain tensors and builtins, so loading runs no pickled code.
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a damaged file
        raise CheckpointError(
            f"{path}: not a readable checkpoint ({exc}); delete it to train from scratch"
        ) from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != _FORMAT:
        raise CheckpointError(
            f"{path}: not a checkpoint of this nvd version (format {_FORMAT}); delete it to train from scratch"
        )
    return ckpt


def _load_module_states(path: Path, ckpt: dict[str, Any], modules: Mapping[str, nn.Module]) -> None:
    saved = ckpt["modules"]
    if set(saved) != set(modules):
        raise CheckpointError(f"{path} holds modules {sorted(saved)}, the model has {sorted(modules)}")
    for name, module in modules.items():
        try:
            module.load_state_dict(saved[name])
        except RuntimeError as exc:  # missing/unexpected keys or shape mismatch
            raise CheckpointError(f"{path}: module '{name}' does not fit the saved state ({exc})") from exc


def _restore(
    path: Path,
    ckpt: dict[str, Any],
    modules: Mapping[str, nn.Module],
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    device: torch.device,
) -> None:
    """Put modules, optimiser and every RNG back in the state saved in ``ckpt``."""
    if ckpt["device_type"] != device.type:
        # CPU and CUDA generators have different algorithms: the batches could not continue.
        raise CheckpointError(
            f"{path} was written training on {ckpt['device_type']}, this run uses {device.type}; "
            "resume on the same kind of device or delete the checkpoint to train from scratch"
        )
    _load_module_states(path, ckpt, modules)
    try:
        # Moves the state onto each parameter's device (the checkpoint was loaded to CPU).
        optimizer.load_state_dict(ckpt["optimizer"])
    except (ValueError, KeyError) as exc:
        raise CheckpointError(f"{path}: optimiser state does not fit this optimiser ({exc})") from exc
    generator.set_state(ckpt["generator"])
    torch.set_rng_state(ckpt["torch_rng"])
    if ckpt["cuda_rng"] is not None:
        torch.cuda.set_rng_state(ckpt["cuda_rng"], device)
    random.setstate(ckpt["python_rng"])
    np_rng = ckpt["numpy_rng"]
    np.random.set_state(
        {
            "bit_generator": "MT19937",
            "state": {"key": np_rng["key"].numpy().astype(np.uint32), "pos": np_rng["pos"]},
            "has_gauss": np_rng["has_gauss"],
            "gauss": np_rng["gauss"],
        }
    )


def _jsonable(value: Mapping[str, Any]) -> dict[str, Any]:
    """``value`` as JSON builtins (tuples -> lists, paths -> str, NumPy scalars -> numbers),
    so it survives ``weights_only`` loading and compares equal across runs."""

    def default(obj: Any) -> Any:
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, os.PathLike):
            return os.fspath(obj)
        raise TypeError(f"identity/meta value {obj!r} of type {type(obj).__name__} is not JSON-like")

    return json.loads(json.dumps(dict(value), default=default))


def _differences(saved: Any, current: Any, prefix: str = "") -> list[str]:
    """Human-readable differences between two JSON-like values, by dotted key path."""
    if isinstance(saved, dict) and isinstance(current, dict):
        out = []
        for key in sorted(saved.keys() | current.keys()):
            where = f"{prefix}.{key}" if prefix else key
            if key not in current:
                out.append(f"{where} is only in the checkpoint")
            elif key not in saved:
                out.append(f"{where} is not in the checkpoint")
            else:
                out += _differences(saved[key], current[key], where)
        return out
    # Compared as JSON text so that NaN equals NaN.
    if json.dumps(saved, sort_keys=True) == json.dumps(current, sort_keys=True):
        return []
    return [f"{prefix or 'identity'}: {_short(saved)} in the checkpoint, {_short(current)} now"]


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_identity(path: Path, saved: dict[str, Any], current: dict[str, Any]) -> None:
    diffs = _differences(saved, current)
    if diffs:
        shown = "; ".join(diffs[:5]) + (f"; and {len(diffs) - 5} more" if len(diffs) > 5 else "")
        raise CheckpointError(
            f"{path} belongs to a different run ({shown}). Delete {path.parent} or use another output "
            "folder to train this one from scratch"
        )


# ---------------------------------------------------------------------------- logging


def _eval_psnr(task: TrainTask) -> dict[str, float]:
    """task.psnr() as {"psnr": headline, other log columns...}."""
    with torch.no_grad():
        value = task.psnr()
    if isinstance(value, Mapping):
        if PSNR_COLUMN not in value:
            raise ValueError(f"task.psnr() returned {sorted(value)} without the headline '{PSNR_COLUMN}'")
        return {name: float(v) for name, v in value.items()}
    return {PSNR_COLUMN: float(value)}


