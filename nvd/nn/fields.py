"""Fields: coordinates -> values, as plain MLPs or an encoding followed by an MLP."""

from __future__ import annotations

from torch import Tensor, nn

from nvd.nn.encodings import HashGrid, HashGridConfig


def mlp(in_dim: int, hidden: int, layers: int, out_dim: int, bias: bool = True) -> nn.Sequential:
    """``layers`` linear layers (>= 1) with ReLU between them; no output activation."""
    dims = [in_dim] + [hidden] * (layers - 1) + [out_dim]
    modules: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        modules.append(nn.Linear(a, b, bias=bias))
        if i < layers - 1:
            modules.append(nn.ReLU(inplace=True))
    return nn.Sequential(*modules)


class GridField(nn.Module):
    """A hash grid followed by an MLP: coordinates in [-1,1]^d -> raw outputs [N, out_dim]."""

    def __init__(self, input_dim: int, grid: HashGridConfig, hidden: int, layers: int, out_dim: int, bias: bool):
        super().__init__()
        self.grid = HashGrid(input_dim, grid)
        self.net = mlp(self.grid.output_dim, hidden, layers, out_dim, bias)

    def forward(self, coords: Tensor) -> Tensor:
        return self.net(self.grid((coords + 1) * 0.5))
