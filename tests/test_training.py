"""Shared training loop: exact resume after a kill, atomic checkpoints, NaN guard, run
identity, log.csv / TensorBoard rows and the PSNR-at-time helpers."""

from __future__ import annotations

import io
import logging
import math
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from nvd.core.errors import ConfigError, NvdError
from nvd.core.layout import LOG_NAME
from nvd.train.config import TrainConfig
from nvd.train.logs import psnr_at_time, read_log
from nvd.train.loop import (
    CHECKPOINT_NAME,
    CheckpointError,
    TrainingDiverged,
    load_modules,
    seed_everything,
    train,
)

CFG = TrainConfig(iterations=60, checkpoint_every=20, log_every=10, seed=3, device="cpu")
IDENTITY = {"video": "toy", "config": {"lr": 0.01, "hidden": 16, "size": [64, 96]}}


class Interrupted(Exception):
    """Stands in for a kill (SIGKILL, preemption) in the middle of training."""


class ToyTask:
    """A small MLP fitting a random target from random batches, with Adam.

    The dropout layer draws from torch's global RNG, so the test also covers restoring it.
    """

    def __init__(self, fail_at: int | None = None, nan_at: int | None = None, late_part_from: int | None = None):
        seed_everything(CFG.seed)
        self.net = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Dropout(0.1), nn.Linear(16, 3))
        data = torch.Generator().manual_seed(123)
        self.x = torch.rand(256, 2, generator=data)
        self.y = torch.rand(256, 3, generator=data)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=1e-2)
        self.fail_at, self.nan_at, self.late_part_from = fail_at, nan_at, late_part_from

    def modules(self) -> dict[str, nn.Module]:
        return {"net": self.net}

    def optimizer(self) -> torch.optim.Optimizer:
        return self.opt

    def step_loss(self, iteration: int, generator: torch.Generator) -> tuple[Tensor, dict[str, float]]:
        if iteration == self.fail_at:
            raise Interrupted(f"killed at iteration {iteration}")
        idx = torch.randint(0, len(self.x), (32,), generator=generator)
        mse = (self.net(self.x[idx]) - self.y[idx]).square().mean()
        if iteration == self.nan_at:
            mse = mse * math.nan
        reg = 1e-4 * sum(p.square().sum() for p in self.net.parameters())
        parts = {"mse": mse.item(), "reg": reg.item()}
        if self.late_part_from is not None and iteration >= self.late_part_from:
            parts["late"] = 0.5
        return mse + reg, parts

    def psnr(self) -> float:
        self.net.eval()
        mse = (self.net(self.x) - self.y).square().mean().item()
        self.net.train()
        return -10 * math.log10(mse)


def assert_same(a: Any, b: Any, where: str = "") -> None:
    """Recursive equality of nested state (tensors bit for bit)."""
    if isinstance(a, Tensor):
        assert isinstance(b, Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def load_ckpt(out: Path) -> dict[str, Any]:
    return torch.load(out / CHECKPOINT_NAME, map_location="cpu", weights_only=True)


def without_time(rows: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{k: v for k, v in row.items() if k != "wall_time_s"} for row in rows]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[ToyTask, Path]:
    """An uninterrupted 60-iteration run."""
    out = tmp_path_factory.mktemp("reference")
    task = ToyTask()
    result = train(task, CFG, out, identity=IDENTITY, meta={"code_version": "abc"})
    assert result.resumed_from is None and result.iterations == 60
    return task, out


def assert_matches_reference(task: ToyTask, out: Path, reference: tuple[ToyTask, Path]) -> None:
    ref_task, ref_out = reference
    for (name, p), (_, q) in zip(task.net.named_parameters(), ref_task.net.named_parameters()):
        assert torch.equal(p, q), name
    assert_same(task.opt.state_dict(), ref_task.opt.state_dict(), "optimizer")
    ckpt, ref = load_ckpt(out), load_ckpt(ref_out)
    for key in ("iteration", "modules", "optimizer", "generator", "torch_rng", "python_rng", "numpy_rng"):
        assert_same(ckpt[key], ref[key], key)
    assert without_time(read_log(out)) == without_time(read_log(ref_out))


def test_resume_after_kill_between_checkpoints_is_bit_exact(tmp_path: Path, reference) -> None:
    with pytest.raises(Interrupted):
        train(ToyTask(fail_at=33), CFG, tmp_path, identity=IDENTITY)
    assert load_ckpt(tmp_path)["iteration"] == 20
    assert [r["iteration"] for r in read_log(tmp_path)] == [10, 20, 30]  # 30 came after the checkpoint

    task = ToyTask()  # a fresh process: new model, new optimiser
    result = train(task, CFG, tmp_path, identity=IDENTITY)
    assert result.resumed_from == 20 and result.iterations == 60
    assert result.checkpoint == tmp_path / CHECKPOINT_NAME
    assert_matches_reference(task, tmp_path, reference)
    assert [r["iteration"] for r in read_log(tmp_path)] == [10, 20, 30, 40, 50, 60]
    assert result.psnr == read_log(tmp_path)[-1]["psnr"]


def test_kill_while_writing_a_checkpoint_keeps_the_previous_one(
    tmp_path: Path, reference, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_save = torch.save
    calls = []

    def dying_save(obj: Any, f: Any) -> None:
        calls.append(obj["iteration"])
        if len(calls) == 2:
            f.write(b"half a checkpoint")
            raise Interrupted("killed while writing")
        real_save(obj, f)

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(Interrupted):
        train(ToyTask(), CFG, tmp_path, identity=IDENTITY)
    monkeypatch.setattr(torch, "save", real_save)
    assert calls == [20, 40]
    assert load_ckpt(tmp_path)["iteration"] == 20
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left

    task = ToyTask()
    assert train(task, CFG, tmp_path, identity=IDENTITY).resumed_from == 20
    assert_matches_reference(task, tmp_path, reference)


def test_finished_run_is_not_trained_again(tmp_path: Path) -> None:
    cfg = TrainConfig(iterations=20, checkpoint_every=20, log_every=10, seed=3, device="cpu")
    first = train(ToyTask(), cfg, tmp_path, identity=IDENTITY)
    before = (tmp_path / LOG_NAME).read_text()
    again = train(ToyTask(), cfg, tmp_path, identity=IDENTITY)
    assert again.resumed_from == 20
    assert again.psnr == first.psnr and again.wall_time_s == first.wall_time_s
    assert (tmp_path / LOG_NAME).read_text() == before
    with pytest.raises(CheckpointError, match="past the 10 iterations"):
        train(ToyTask(), TrainConfig(iterations=10, device="cpu"), tmp_path, identity=IDENTITY)


def test_non_finite_loss_names_iteration_and_part_and_keeps_checkpoint(tmp_path: Path) -> None:
    task = ToyTask(nan_at=26)
    with pytest.raises(TrainingDiverged, match=r"iteration 26.*mse=nan") as info:
        train(task, CFG, tmp_path, identity=IDENTITY)
    assert isinstance(info.value, NvdError)
    assert "checkpoint" in str(info.value)
    assert all(torch.isfinite(p).all() for p in task.net.parameters())  # the NaN step was never taken

    good = tmp_path / "good"
    cfg20 = TrainConfig(iterations=20, checkpoint_every=20, log_every=10, seed=3, device="cpu")
    train(ToyTask(), cfg20, good, identity=IDENTITY)
    assert load_ckpt(tmp_path)["iteration"] == 20
    assert_same(load_ckpt(tmp_path)["modules"], load_ckpt(good)["modules"])


def test_identity_mismatch_is_refused_and_meta_is_not_compared(tmp_path: Path) -> None:
    cfg = TrainConfig(iterations=20, checkpoint_every=10, log_every=10, seed=3, device="cpu")
    train(ToyTask(), cfg, tmp_path, identity=IDENTITY, meta={"code_version": "abc"})
    other = {"video": "toy", "config": {"lr": 0.02, "hidden": 16, "size": [64, 96]}}
    with pytest.raises(CheckpointError, match=r"config\.lr: 0\.01 in the checkpoint, 0\.02 now") as info:
        train(ToyTask(), cfg, tmp_path, identity=other)
    assert isinstance(info.value, NvdError)
    train(ToyTask(), cfg, tmp_path / "no_identity")
    with pytest.raises(CheckpointError, match="video is not in the checkpoint"):
        train(ToyTask(), cfg, tmp_path / "no_identity", identity={"video": "toy"})
    # Same identity (tuples and lists normalise alike), other meta, longer run: resumes.
    same = {"video": "toy", "config": {"lr": 0.01, "hidden": 16, "size": (64, 96)}}
    longer = TrainConfig(iterations=30, checkpoint_every=10, log_every=10, seed=3, device="cpu")
    result = train(ToyTask(), longer, tmp_path, identity=same, meta={"code_version": "def"})
    assert result.resumed_from == 20
    assert load_ckpt(tmp_path)["meta"] == {"code_version": "def"}


def test_unreadable_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / CHECKPOINT_NAME).write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        train(ToyTask(), CFG, tmp_path)


def test_load_modules_for_evaluation(reference) -> None:
    ref_task, ref_out = reference
    net = ToyTask().net
    meta = load_modules(ref_out / CHECKPOINT_NAME, {"net": net})
    assert meta == {"code_version": "abc"}
    assert_same(net.state_dict(), ref_task.net.state_dict())
    with pytest.raises(CheckpointError, match="holds modules"):
        load_modules(ref_out / CHECKPOINT_NAME, {"model": net})


def test_log_csv_columns_and_a_part_that_appears_late(tmp_path: Path) -> None:
    cfg = TrainConfig(iterations=25, checkpoint_every=100, log_every=10, seed=3, device="cpu")
    train(ToyTask(late_part_from=15), cfg, tmp_path)
    lines = (tmp_path / LOG_NAME).read_text().splitlines()
    assert lines[0] == "iteration,wall_time_s,loss,mse,reg,late,psnr"
    rows = read_log(tmp_path)
    assert [r["iteration"] for r in rows] == [10, 20, 25]  # every log_every and at the end
    assert "late" not in rows[0] and rows[1]["late"] == rows[2]["late"] == 0.5
    times = [r["wall_time_s"] for r in rows]
    assert 0 < times[0] < times[1] < times[2]
    for row in rows:
        assert row["loss"] == pytest.approx(row["mse"] + row["reg"], rel=1e-5)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_log_lines_without_a_terminal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    cfg = TrainConfig(iterations=20, checkpoint_every=20, log_every=10, seed=3, device="cpu")
    with caplog.at_level(logging.INFO, logger="nvd"):
        train(ToyTask(), cfg, tmp_path)
    text = caplog.text
    assert "train 10/20: loss" in text and "train 20/20: loss" in text and "mse" in text and "PSNR" in text
    assert sys.stderr.getvalue() == ""


def test_progress_bar_on_a_terminal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stderr", Terminal())
    cfg = TrainConfig(iterations=20, checkpoint_every=20, log_every=10, seed=3, device="cpu")
    with caplog.at_level(logging.INFO, logger="nvd"):
        train(ToyTask(), cfg, tmp_path)
    assert "20/20" in sys.stderr.getvalue() and "psnr=" in sys.stderr.getvalue()
    assert "train 10/20" not in caplog.text  # the bar replaces the per-row lines


def test_tensorboard_rows_and_purge_on_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writers: list[FakeWriter] = []

    class FakeWriter:
        def __init__(self, log_dir: str, purge_step: int | None = None) -> None:
            self.log_dir, self.purge_step, self.scalars, self.closed = log_dir, purge_step, [], False
            writers.append(self)

        def add_scalar(self, tag: str, value: float, global_step: int, walltime: float) -> None:
            self.scalars.append((tag, global_step))

        def flush(self) -> None:
            pass

        def close(self) -> None:
            self.closed = True

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=FakeWriter))
    with pytest.raises(Interrupted):
        train(ToyTask(fail_at=33), CFG, tmp_path)
    train(ToyTask(), CFG, tmp_path)
    first, second = writers
    assert first.purge_step is None and second.purge_step == 21
    assert first.closed and second.closed
    assert ("psnr", 30) in first.scalars and ("loss/mse", 30) in first.scalars and ("loss", 30) in first.scalars
    assert sorted({step for _, step in second.scalars}) == [30, 40, 50, 60]


def test_read_log_and_psnr_at_time(tmp_path: Path) -> None:
    (tmp_path / LOG_NAME).write_text(
        "iteration,wall_time_s,loss,mse,psnr\n"
        "10,1.5,0.2,0.2,20.0\n"
        "20,3.0,0.1,,25.0\n"
        "30,4.5,0.05,0.05,27"  # a line cut short by a kill: ignored
    )
    rows = read_log(tmp_path)
    assert rows == [
        {"iteration": 10, "wall_time_s": 1.5, "loss": 0.2, "mse": 0.2, "psnr": 20.0},
        {"iteration": 20, "wall_time_s": 3.0, "loss": 0.1, "psnr": 25.0},
    ]
    assert math.isnan(psnr_at_time(rows, 1.0))
    assert psnr_at_time(rows, 1.5) == 20.0
    assert psnr_at_time(rows, 2.9) == 20.0
    assert psnr_at_time(rows, 100.0) == 25.0


def test_train_config_validation() -> None:
    with pytest.raises(ConfigError, match="checkpoint_every"):
        TrainConfig(checkpoint_every=0)


class NanGradTask(ToyTask):
    """ToyTask whose loss at iteration ``bad_at`` gains a term that is 0 but whose gradient
    is NaN: the sqrt of a sum of squares at 0 (as a distance between equal points is)."""

    def __init__(self, bad_at: int) -> None:
        super().__init__()
        self.bad_at = bad_at

    def step_loss(self, iteration: int, generator: torch.Generator) -> tuple[Tensor, dict[str, float]]:
        loss, parts = super().step_loss(iteration, generator)
        if iteration == self.bad_at:
            bias = self.net[3].bias
            loss = loss + torch.sqrt((bias - bias.detach()).square().sum())
        return loss, parts


@pytest.mark.parametrize(("bad_at", "kept"), [(26, 20), (40, 20), (60, 40)])
def test_finite_loss_with_a_nan_gradient_names_the_parameter_and_is_never_checkpointed(
    tmp_path: Path, bad_at: int, kept: int
) -> None:
    """A finite loss, a NaN gradient: the step makes the parameters NaN. Between checkpoints
    (26), at a checkpoint (40) and at the last iteration (60), nothing NaN reaches the disk."""
    from nvd.train.runs import train_and_publish

    model = tmp_path / "model.pt"
    with pytest.raises(TrainingDiverged) as info:
        train_and_publish(lambda: train(NanGradTask(bad_at), CFG, tmp_path / "work", identity=IDENTITY),
                          tmp_path / "work", model, restart_on_mismatch=False)
    message = str(info.value)
    assert f"iteration {bad_at}: the loss was finite" in message
    assert "module 'net', parameter '3.bias' has 3 NaN of its 3 values" in message
    assert "more parameters" not in message  # only that gradient was NaN
    assert "last good checkpoint" in message
    ckpt = load_ckpt(tmp_path / "work")
    assert ckpt["iteration"] == kept < bad_at
    assert all(torch.isfinite(t).all() for t in ckpt["modules"]["net"].values())
    assert not model.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    rows = read_log(tmp_path / "work")
    assert rows[-1]["iteration"] < bad_at and all(math.isfinite(r["psnr"]) for r in rows)


def test_a_run_that_diverged_resumes_from_the_last_finite_checkpoint(tmp_path: Path, reference) -> None:
    with pytest.raises(TrainingDiverged):
        train(NanGradTask(26), CFG, tmp_path, identity=IDENTITY)
    task = ToyTask()  # the cause fixed: the same run goes on from iteration 20, exactly
    assert train(task, CFG, tmp_path, identity=IDENTITY).resumed_from == 20
    assert_matches_reference(task, tmp_path, reference)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_the_parameter_check_reductions_see_every_non_finite_value(dtype: torch.dtype) -> None:
    """The CPU check (a sum per tensor) and the one used on accelerators (fused L1 norms),
    both run here on CPU tensors: NaN, inf, -inf and +inf/-inf together are caught wherever
    they are, large finite values are not mistaken for overflow."""
    from nvd.train.divergence import all_finite_by_foreach, all_finite_by_sums

    def params() -> list[Tensor]:
        big = torch.full((5000,), 60000.0 if dtype == torch.float16 else 1e30, dtype=dtype)
        return [torch.randn(7, 3).to(dtype), big, torch.randn(4097).to(dtype)]

    for check in (all_finite_by_sums, all_finite_by_foreach):
        assert bool(check(params())), check.__name__
        for which, index, values in [(0, 20, [math.nan]), (2, 4096, [math.inf]),
                                     (2, 0, [-math.inf]), (1, 3, [math.inf, -math.inf])]:
            ps = params()
            flat = ps[which].view(-1)
            for k, value in enumerate(values):
                flat[index + k] = value
            assert not bool(check(ps)), (check.__name__, which, values)


def test_a_task_failing_on_the_nan_parameters_reports_the_divergence(tmp_path: Path) -> None:
    class Picky(NanGradTask):
        def step_loss(self, iteration: int, generator: torch.Generator) -> tuple[Tensor, dict[str, float]]:
            if not all(torch.isfinite(p).all() for p in self.net.parameters()):
                raise ValueError("probabilities contain NaN")  # as torch.multinomial would
            return super().step_loss(iteration, generator)

    with pytest.raises(TrainingDiverged, match=r"iteration 26: the loss was finite.*'3\.bias'") as info:
        train(Picky(26), CFG, tmp_path, identity=IDENTITY)
    assert isinstance(info.value.__context__, ValueError)
    assert load_ckpt(tmp_path)["iteration"] == 20
