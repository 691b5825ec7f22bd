"""HyperNVD: generated tensors, functional evaluation, multi-video training, finetune initialisation."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from conftest import kill_at
from test_decomposition import tiny_video

from nvd.core.errors import ConfigError, InputError
from nvd.models.hashing_nvd.model import DecompositionConfig, LayeredDecomposition
from nvd.models.hypernvd.model import FunctionalDecomposition, HyperNetConfig, HyperNetwork, parameter_count
from nvd.models.hypernvd.objective import HyperTask, HyperTrainConfig
from nvd.nn.encodings import HashGridConfig
from nvd.train.config import TrainConfig
from nvd.train.loop import CheckpointError, seed_everything, train

GRID = HashGridConfig(n_levels=3, log2_table_size=8, per_level_scale=None, finest_resolution=64)
TARGET = DecompositionConfig(mapping_hidden=16, mapping_layers=3, texture_hidden=8, texture_layers=2,
                             residual_hidden=8, residual_layers=2, alpha_hidden=8, alpha_layers=2, bias=False,
                             texture_grid=GRID, residual_grid=GRID, alpha_grid=GRID)
EMBEDDING_DIM = 6


def hyper_cfg(head: str = "full", **train) -> HyperTrainConfig:
    return HyperTrainConfig(
        dataset="d", train_videos=("a", "b"), batch_size=128, pretrain_iterations=2, model=TARGET,
        network=HyperNetConfig(head=head, hidden=16, chunk_size=100, chunk_code=4),
        train=TrainConfig(**{"iterations": 6, "checkpoint_every": 2, "log_every": 2, "device": "cpu", **train}))


def videos() -> dict:
    a, b = tiny_video(), tiny_video(frames=3)
    b.frames = b.frames.flip(0)  # different content, same layer count
    return {"a": a, "b": b}


def embeddings() -> dict:
    g = torch.Generator().manual_seed(3)
    return {"a": torch.randn(EMBEDDING_DIM, generator=g), "b": torch.randn(EMBEDDING_DIM, generator=g)}


@pytest.mark.parametrize("head", ["full", "chunked"])
def test_generated_tensors_have_the_target_names_and_shapes(head):
    target = LayeredDecomposition(2, TARGET)
    hypernet = HyperNetwork(target, EMBEDDING_DIM, HyperNetConfig(head=head, hidden=16, chunk_size=100))
    generated = hypernet(torch.randn(EMBEDDING_DIM))
    expected = {name: tuple(p.shape) for name, p in target.named_parameters()}
    assert {name: tuple(t.shape) for name, t in generated.items()} == expected
    # grid tables are generated; kernel constants (offsets, resolutions) are buffers, never generated
    assert any(name.endswith("grid.table") for name in generated)
    assert not any(name in generated for name, _ in target.named_buffers())


@pytest.mark.parametrize("head", ["full", "chunked"])
def test_untrained_hypernetwork_starts_at_the_target_initialisation(head):
    """With the last layer's weights at zero the output is exactly the target's own init."""
    target = LayeredDecomposition(2, TARGET)
    hypernet = HyperNetwork(target, EMBEDDING_DIM, HyperNetConfig(head=head, hidden=16, chunk_size=100,
                                                                  output_scale=0.0))
    generated = hypernet(torch.randn(EMBEDDING_DIM))
    for name, p in target.named_parameters():
        assert torch.equal(generated[name], p), name


def test_functional_target_equals_the_model_with_the_tensors_loaded():
    target = LayeredDecomposition(2, TARGET)
    hypernet = HyperNetwork(target, EMBEDDING_DIM, HyperNetConfig(hidden=16))
    generated = hypernet(torch.randn(EMBEDDING_DIM))
    loaded = LayeredDecomposition(2, TARGET)
    loaded.load_state_dict({k: v.detach() for k, v in generated.items()})
    xyt = torch.rand(40, 3) * 2 - 1
    functional = FunctionalDecomposition(target, generated)
    for key, value in functional(xyt).items():
        assert torch.allclose(value, loaded(xyt)[key], atol=1e-6), key
    assert torch.allclose(functional.uv(xyt), loaded.uv(xyt), atol=1e-6)
    assert torch.allclose(functional.alphas(xyt), loaded.alphas(xyt), atol=1e-6)
    # ...and differs from the template's own weights (the generated ones are really used)
    assert not torch.allclose(functional.uv(xyt), target.uv(xyt), atol=1e-4)


def test_chunked_heads_are_much_smaller_for_a_large_target():
    target = LayeredDecomposition(2, dataclasses.replace(TARGET, mapping_hidden=128, texture_grid=dataclasses.replace(
        GRID, log2_table_size=14, n_levels=8, finest_resolution=512)))
    full = HyperNetwork(target, 32, HyperNetConfig(head="full"))
    chunked = HyperNetwork(target, 32, HyperNetConfig(head="chunked", chunk_size=1024))
    n_target = parameter_count(target)
    assert parameter_count(full) > 100 * n_target  # the reference's heads: ~hidden x the target
    assert parameter_count(chunked) < parameter_count(full) / 10


def test_wrong_embedding_dimension_is_a_clear_error():
    hypernet = HyperNetwork(LayeredDecomposition(2, TARGET), EMBEDDING_DIM)
    with pytest.raises(InputError, match="6-d video embedding"):
        hypernet(torch.randn(EMBEDDING_DIM + 1))
    with pytest.raises(InputError, match="one dimension"):
        HyperTask(videos(), {"a": torch.randn(6), "b": torch.randn(7)}, hyper_cfg())


def test_split_config_errors():
    with pytest.raises(ConfigError, match="both"):
        HyperTrainConfig(dataset="d", train_videos=("a",), heldout_videos=("a",))
    with pytest.raises(ConfigError, match="train_videos"):
        HyperTrainConfig(dataset="d")


def test_gradients_reach_the_hypernetwork_and_only_it():
    seed_everything(0)
    task = HyperTask(videos(), embeddings(), hyper_cfg())
    loss, parts = task.step_loss(5, torch.Generator().manual_seed(0))  # past pretraining: all losses
    assert not loss.requires_grad and torch.isfinite(loss) and "rgb" in parts
    assert all(p.grad is None for p in task.target.parameters())
    for name, head in task.hypernet.heads.items():
        grads = [p.grad for p in head.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads), name
        assert any(g.abs().sum() > 0 for g in grads), name


def test_per_video_accumulation_equals_the_gradient_of_the_summed_loss():
    """Backpropagating each video's loss/N in turn gives the gradient of the mean loss."""
    seed_everything(0)
    task = HyperTask(videos(), embeddings(), hyper_cfg())
    loss, _ = task.step_loss(5, torch.Generator().manual_seed(1))
    accumulated = [p.grad.clone() for p in task.hypernet.parameters()]
    task.hypernet.zero_grad(set_to_none=True)
    generator = torch.Generator().manual_seed(1)
    losses = []
    for name, objective in task.objectives.items():
        objective.model = task.generated(name)
        losses.append(objective.loss(5, generator)[0])
    total = sum(losses) / len(losses)
    total.backward()
    assert torch.allclose(total.detach(), loss, rtol=1e-5)
    for a, p in zip(accumulated, task.hypernet.parameters()):
        assert torch.allclose(a, p.grad, rtol=1e-4, atol=1e-7)


def test_hypernetwork_training_learns_and_resumes_exactly(tmp_path):
    def run(out: Path, fail_at: int | None = None) -> HyperTask:
        seed_everything(0)
        task = HyperTask(videos(), embeddings(), hyper_cfg())
        if fail_at is not None:
            kill_at(task, fail_at)
        train(task, task.cfg.train, out)
        return task

    reference = run(tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b", fail_at=5)
    resumed = run(tmp_path / "b")
    for (name, a), (_, b) in zip(reference.hypernet.state_dict().items(), resumed.hypernet.state_dict().items()):
        assert torch.equal(a, b), name
    from nvd.train.logs import read_log

    rows = read_log(tmp_path / "b")
    assert [r["iteration"] for r in rows] == [2, 4, 6]
    assert {"psnr", "psnr_a", "psnr_b"} <= set(rows[-1])
    assert rows[-1]["psnr"] == pytest.approx((rows[-1]["psnr_a"] + rows[-1]["psnr_b"]) / 2)


def test_checkpoint_for_another_target_config_is_refused(tmp_path):
    from nvd.models.hypernvd.run import load_hypernet

    seed_everything(0)
    task = HyperTask(videos(), embeddings(), hyper_cfg(iterations=1))
    meta = {"config": dataclasses.asdict(task.cfg), "n_layers": 2, "embedding_dim": EMBEDDING_DIM}
    train(task, task.cfg.train, tmp_path, meta=meta)
    hypernet, template, _ = load_hypernet(tmp_path / "checkpoint.pt", TARGET)
    for (name, a), (_, b) in zip(hypernet.state_dict().items(), task.hypernet.state_dict().items()):
        assert torch.equal(a, b), name
    with pytest.raises(CheckpointError, match="different target model.*mapping_hidden"):
        load_hypernet(tmp_path / "checkpoint.pt", dataclasses.replace(TARGET, mapping_hidden=32))


def test_scratch_baseline_takes_the_finetune_settings_with_its_own_warm_ups():
    from nvd.models.hypernvd.objective import ScratchConfig, finetune_defaults

    finetune = finetune_defaults()
    assert (finetune.pretrain_iterations, finetune.losses.alpha_bootstrapping_until) == (0, 500)
    scratch = ScratchConfig().apply(finetune)
    # Hashing-NVD's warm-ups, everything else as finetuned
    losses = scratch.losses
    assert (scratch.pretrain_iterations, losses.alpha_bootstrapping_until, losses.global_rigidity_until,
            losses.global_rigidity_foreground) == (100, 10_000, 5_000, 0.005)
    assert dataclasses.replace(scratch, pretrain_iterations=0, losses=finetune.losses) == finetune
    # a finetuning run's own foreground rigidity weight does not reach the baseline
    stronger = dataclasses.replace(
        finetune, losses=dataclasses.replace(finetune.losses, global_rigidity_foreground=0.05))
    assert ScratchConfig().apply(stronger).losses.global_rigidity_foreground == 0.005
    own = ScratchConfig(global_rigidity_foreground=0.01).apply(stronger)
    assert own.losses.global_rigidity_foreground == 0.01
