"""HyperNVD's hypernetwork: a video embedding -> every learnable tensor of a decomposition.

The target is the same ``LayeredDecomposition`` class the per-video decomposition trains
(usually with ``bias=False``, as in HyperNVD). ``HyperNetwork`` has one head per target
parameter (MLP weights and hash-grid tables); grid offsets and the other kernel constants
are non-learnable buffers the target computes itself, so they are never generated.

Heads (``HyperNetConfig.head``):

- ``full``: embedding -> hidden -> hidden -> numel (ReLU, Kaiming init), the reference's
  head. Its last layer alone has ``hidden * numel`` weights, so a 4.4M-parameter target
  needs a hypernetwork of about 130x that.
- ``chunked``: the tensor is generated in chunks of ``chunk_size`` values by one head per
  tensor that sees the embedding and a learned code of the chunk: embedding ++ code ->
  hidden -> hidden -> chunk_size, plus a learned per-value base. About ``numel`` +
  ``hidden * chunk_size`` parameters per tensor instead of ``hidden * numel``.

In both, the last layer's weight is scaled down at init (``output_scale``, 1/10 in the
reference) and the per-value offset (the last layer's bias in ``full``, the base in
``chunked``) starts at the target model's own initialisation: the untrained hypernetwork
generates a normally initialised decomposition for every embedding, and training moves
away from it.

``FunctionalDecomposition`` runs the target on generated tensors (torch.func.functional_call),
so gradients flow from the decomposition losses back into the hypernetwork.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from nvd.core.errors import ConfigError, InputError
from nvd.models.hashing_nvd.model import LayeredDecomposition


@dataclass(frozen=True)
class HyperNetConfig:
    """Hypernetwork heads (``hypernet.network`` section)."""

    head: Literal["full", "chunked"] = "full"
    hidden: int = 128  # width of the two hidden layers of every head
    output_scale: float = 0.1  # the last layer's initial weights are multiplied by this
    chunk_size: int = 4096  # chunked heads: values generated per chunk
    chunk_code: int = 32  # chunked heads: size of each chunk's learned code

    def __post_init__(self) -> None:
        if self.head not in ("full", "chunked"):
            raise ConfigError(f"hypernet.network.head must be 'full' or 'chunked', got {self.head!r}")
        for key in ("hidden", "chunk_size", "chunk_code"):
            if getattr(self, key) < 1:
                raise ConfigError(f"hypernet.network.{key} must be >= 1, got {getattr(self, key)}")


def _head_mlp(in_dim: int, hidden: int, out_dim: int, output_scale: float) -> nn.Sequential:
    """in -> hidden -> hidden -> out with ReLU, Kaiming init, the last layer scaled down."""
    layers = [nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, out_dim)]
    for layer in layers[::2]:
        nn.init.kaiming_uniform_(layer.weight, nonlinearity="relu")
        nn.init.zeros_(layer.bias)
    with torch.no_grad():
        layers[-1].weight.mul_(output_scale)
    return nn.Sequential(*layers)


class FullHead(nn.Module):
    """embedding [D] -> tensor of ``shape``; the last bias starts at ``init`` (flattened)."""

    def __init__(self, embedding_dim: int, init: Tensor, cfg: HyperNetConfig) -> None:
        super().__init__()
        self.shape = tuple(init.shape)
        self.net = _head_mlp(embedding_dim, cfg.hidden, init.numel(), cfg.output_scale)
        with torch.no_grad():
            self.net[-1].bias.copy_(init.reshape(-1))

    def forward(self, embedding: Tensor) -> Tensor:
        return self.net(embedding).view(self.shape)


class ChunkedHead(nn.Module):
    """embedding [D] -> tensor of ``shape``, generated ``chunk_size`` values at a time.

    Every chunk runs the same MLP on the embedding concatenated with its own learned code;
    a learned base (initialised to ``init``) is added, so the head's output starts at the
    target's initialisation like the full head's.
    """

    def __init__(self, embedding_dim: int, init: Tensor, cfg: HyperNetConfig) -> None:
        super().__init__()
        self.shape = tuple(init.shape)
        self.numel = init.numel()
        chunk = min(cfg.chunk_size, self.numel)
        n_chunks = -(-self.numel // chunk)
        self.codes = nn.Parameter(torch.randn(n_chunks, cfg.chunk_code))
        self.net = _head_mlp(embedding_dim + cfg.chunk_code, cfg.hidden, chunk, cfg.output_scale)
        self.base = nn.Parameter(init.detach().clone())

    def forward(self, embedding: Tensor) -> Tensor:
        inputs = torch.cat([embedding.expand(self.codes.shape[0], -1), self.codes], dim=1)
        delta = self.net(inputs).reshape(-1)[: self.numel]
        return self.base + delta.view(self.shape)


def _head_key(name: str) -> str:
    """Parameter name -> ModuleDict key (keys may not contain dots)."""
    return name.replace(".", "__")


class HyperNetwork(nn.Module):
    """Video embedding [D] -> {name: tensor} for every parameter of ``target``.

    ``target`` is only read here (names, shapes and initial values); keep it as the template
    that ``FunctionalDecomposition`` evaluates.
    """

    def __init__(self, target: LayeredDecomposition, embedding_dim: int, cfg: HyperNetConfig = HyperNetConfig()) -> None:
        super().__init__()
        if embedding_dim < 1:
            raise ValueError(f"embedding_dim must be >= 1, got {embedding_dim}")
        self.embedding_dim = embedding_dim
        self.cfg = cfg
        head_cls = FullHead if cfg.head == "full" else ChunkedHead
        self.names = [name for name, _ in target.named_parameters()]
        self.heads = nn.ModuleDict(
            {_head_key(name): head_cls(embedding_dim, p.detach(), cfg) for name, p in target.named_parameters()}
        )

    def forward(self, embedding: Tensor) -> dict[str, Tensor]:
        """embedding float [D] -> {target parameter name: generated tensor of its shape}."""
        if embedding.dim() != 1 or embedding.shape[0] != self.embedding_dim:
            raise InputError(
                f"the hypernetwork takes a {self.embedding_dim}-d video embedding, got shape {tuple(embedding.shape)}"
            )
        return {name: self.heads[_head_key(name)](embedding) for name in self.names}


def parameter_count(module: nn.Module) -> int:
    """Number of learnable values of ``module``."""
    return sum(p.numel() for p in module.parameters())


class _MethodCall(nn.Module):
    """Lets functional_call run any method of the wrapped model, not only forward."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, method: str, *args: Tensor) -> Tensor | dict[str, Tensor]:
        return getattr(self.model, method)(*args)


class FunctionalDecomposition:
    """``model`` (a LayeredDecomposition) evaluated with ``tensors`` in place of its parameters.

    Offers the model's interface (``uv``, ``texture``, ``residual``, ``alphas``, calling it,
    and its attributes such as ``n_layers`` and ``uv_scales``), so the decomposition
    objective runs on it unchanged. ``tensors`` must name exactly the model's parameters.
    """

    def __init__(self, model: LayeredDecomposition, tensors: Mapping[str, Tensor]) -> None:
        expected = {name for name, _ in model.named_parameters()}
        if set(tensors) != expected:
            missing, extra = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
            raise ValueError(f"generated tensors do not fit the target model: missing {missing}, unexpected {extra}")
        self.model = model
        self._call = _MethodCall(model)
        self._tensors = {f"model.{name}": t for name, t in tensors.items()}

    def _run(self, method: str, *args: Tensor):
        return torch.func.functional_call(self._call, self._tensors, (method, *args))  # names checked in __init__; buffers stay the model's

    def uv(self, xyt: Tensor) -> Tensor:
        return self._run("uv", xyt)

    def texture(self, uv: Tensor) -> Tensor:
        return self._run("texture", uv)

    def residual(self, uv: Tensor, t: Tensor) -> Tensor:
        return self._run("residual", uv, t)

    def alphas(self, xyt: Tensor) -> Tensor:
        return self._run("alphas", xyt)

    def __call__(self, xyt: Tensor) -> dict[str, Tensor]:
        return self._run("forward", xyt)

    def __getattr__(self, name: str):
        # Only reached for attributes not set above: n_layers, uv_scales, cfg...
        return getattr(self.__dict__["model"], name)
