"""Hash-grid encoding throughput: points/s for one forward + backward, and its peak memory.

    python -m bench.hashgrid [--device cpu|cuda|auto] [--steps 7] [--threads N]

Settings: 16 levels x 2 features; 3-D input with a 2**19 table (the reference setting: the
decomposition's residual and alpha grids, inputs (x, y, t), no input gradient; once more with
the input gradient) and 2-D input with a 2**15 table and the input gradient on (the texture
grid, whose uv comes from the mapping network); batches of 10k and 100k points. A step is
``table.grad = None`` (what ``optimizer.zero_grad()`` does), forward, and backward of a random
output gradient. On CUDA the tinycudann backend is timed too when it is installed (its
resolution convention differs slightly; the work per point is the same).

Each setting runs in a fresh subprocess so that its peak memory is its own. Peak memory: on
CUDA ``torch.cuda.max_memory_allocated`` above the memory held before the first step; on CPU the
peak resident set size (VmHWM) above the resident size before the first step, from
/proc/self/status (resource.getrusage maxrss where /proc is missing); tracemalloc would not see
PyTorch's allocations. Timings on a shared CPU vary from run to run: the median and the best
step are both printed. Intra-op threads stay at torch's default unless --threads is given (one
thread is slower but far less disturbed by other processes on a shared 2-core machine).
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import statistics
import subprocess
import sys
import time

CASES = [  # (input_dim, log2_table_size, batch, input gradient)
    (3, 19, 10_000, False),
    (3, 19, 100_000, False),
    (3, 19, 100_000, True),
    (2, 15, 10_000, True),
    (2, 15, 100_000, True),
]


def resident_mib() -> tuple[float, float, str]:
    """(current, peak) resident set size in MiB of this process, and where they were read."""
    try:
        with open("/proc/self/status") as status:
            fields = dict(line.split(":", 1) for line in status)
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024, "VmHWM - VmRSS"
    except OSError:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return peak, peak, "getrusage maxrss delta"


def run_case(input_dim: int, log2_table_size: int, batch: int, input_grad: bool, backend: str, device: str,
             steps: int, threads: int | None) -> dict:
    """Time ``steps`` forward+backward steps after two warm-up steps; runs in its own process."""
    import torch

    if threads:
        torch.set_num_threads(threads)

    from nvd.encodings import HashGrid, HashGridConfig

    torch.manual_seed(0)
    grid = HashGrid(input_dim, HashGridConfig(log2_table_size=log2_table_size, backend=backend)).to(device)
    x = torch.rand(batch, input_dim, device=device, requires_grad=input_grad)
    grad_out = torch.randn(batch, grid.output_dim, device=device)
    cuda = device == "cuda"

    def step() -> None:
        grid.table.grad = None
        if input_grad:
            x.grad = None
        grid(x).backward(grad_out)
        if cuda:
            torch.cuda.synchronize()

    if cuda:
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    else:
        before, _, _ = resident_mib()
    times = []
    for i in range(steps + 2):
        start = time.perf_counter()
        step()
        if i >= 2:
            times.append(time.perf_counter() - start)
    if cuda:
        peak, memory = (torch.cuda.max_memory_allocated() - before) / 2**20, "cuda.max_memory_allocated delta"
    else:
        _, hwm, memory = resident_mib()
        peak = hwm - before
    return {
        "backend": grid.backend,
        "table_rows": grid.table.shape[0],
        "median_pts_s": batch / statistics.median(times),
        "best_pts_s": batch / min(times),
        "median_ms": statistics.median(times) * 1e3,
        "peak_mib": peak,
        "memory": memory,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--steps", type=int, default=7, help="timed steps per setting")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: one setting, JSON out
    args = parser.parse_args()

    import torch

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if args.case:
        print(json.dumps(run_case(*json.loads(args.case), device=device, steps=args.steps, threads=args.threads)))
        return
    print(f"torch {torch.__version__}, {args.threads or torch.get_num_threads()} threads, device {device}")
    print(f"{'input':>5} {'table':>6} {'batch':>7} {'x grad':>6}  {'backend':<7} {'median pts/s':>13} "
          f"{'best pts/s':>11} {'median ms':>9} {'peak MiB':>9}")
    backends = ["torch"]
    if device == "cuda" and importlib.util.find_spec("tinycudann") is not None:
        backends.append("tcnn")
    memory = ""
    for case, backend in itertools.product(CASES, backends):
        command = [sys.executable, "-m", "bench.hashgrid", "--device", device, "--steps", str(args.steps),
                   "--case", json.dumps([*case, backend])] + (["--threads", str(args.threads)] if args.threads else [])
        proc = subprocess.run(command, capture_output=True, text=True, check=True)
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        memory = row["memory"]
        input_dim, log2_table_size, batch, input_grad = case
        print(f"{input_dim:>4}D {'2^' + str(log2_table_size):>6} {batch:>7} {'yes' if input_grad else 'no':>6}  "
              f"{row['backend']:<7} {row['median_pts_s']:>13,.0f} {row['best_pts_s']:>11,.0f} "
              f"{row['median_ms']:>9.1f} {row['peak_mib']:>9.1f}")
    print(f"\n16 levels x 2 features; peak memory = {memory} (above the memory held before the first step)")


if __name__ == "__main__":
    main()
