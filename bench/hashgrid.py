"""Hash-grid encoding throughput: points/s for one forward + backward, and its peak memory.

    python -m bench.hashgrid [--device cpu|cuda|auto] [--steps 7] [--threads N]

Settings: 16 levels x 2 features; 3-D input with a 2**19 table (the reference setting: the
decomposition's residual and alpha grids, inputs (x, y, t), no input gradient; once more with
the input gradient) and 2-D input with a 2**15 table and the input gradient on (the texture
grid, whose uv comes from the mapping network); batches of 10k and 100k points. A step is
forward, backward of a random output gradient, and ``table.grad = None`` (what
``optimizer.zero_grad()`` does). On CUDA the tinycudann backend is timed too when it is
installed (its resolution convention differs slightly; the work per point is the same).

Each setting runs in fresh subprocesses: one times steps after two warm-up steps, one measures
the peak memory of one step above what is held between steps (table, inputs). On CUDA that is
``torch.cuda.max_memory_allocated``; on CPU the peak resident set size (VmHWM from
/proc/self/status, reset after a warm-up step) above the resident size before the step, with
glibc told to return freed blocks to the OS so that RSS follows the live tensors (getrusage
maxrss where /proc is missing; tracemalloc would not see PyTorch's allocations).

Timings on a shared CPU vary from run to run: the median and the best step are both printed.
Intra-op threads stay at torch's default unless --threads is given (one thread is slower but
far less disturbed by other processes on a shared 2-core machine).
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import statistics
import subprocess
import sys

from bench.common import time_steps

CASES = [  # (input_dim, log2_table_size, batch, input gradient)
    (3, 19, 10_000, False),
    (3, 19, 100_000, False),
    (3, 19, 100_000, True),
    (2, 15, 10_000, True),
    (2, 15, 100_000, True),
]


def start_peak_memory(device: str) -> tuple[float, str]:
    """Mark the start of the measured steps: (memory held now in MiB, how the peak is read).

    On CPU the kernel's peak-RSS mark is reset (/proc/self/clear_refs), so one-time costs of the
    warm-up steps (thread pools, kernel JIT, allocator arenas) stay out of the figure; without
    /proc, the lifetime maxrss is the baseline and only growth beyond it counts.
    """
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated() / 2**20, "torch.cuda.max_memory_allocated delta"
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return proc_status_mib("VmRSS"), "peak RSS during one step (VmHWM, reset after a warm-up step) - RSS before it"
    except OSError:
        return maxrss_mib(), "getrusage maxrss delta"


def peak_memory(device: str, how: str) -> float:
    """Peak memory in MiB since start_peak_memory, read the way ``how`` says."""
    if device == "cuda":
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    return maxrss_mib() if how.startswith("getrusage") else proc_status_mib("VmHWM")


def proc_status_mib(field: str) -> float:
    with open("/proc/self/status") as status:
        fields = dict(line.split(":", 1) for line in status)
    return int(fields[field].split()[0]) / 1024


def maxrss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_case(input_dim: int, log2_table_size: int, batch: int, input_grad: bool, backend: str, device: str,
             steps: int, threads: int | None, measure: str) -> dict:
    """One setting in its own process: ``measure`` "time" (``steps`` timed steps after two warm-up
    steps) or "memory" (the peak of one step after a warm-up step)."""
    import torch

    if threads:
        torch.set_num_threads(threads)

    from nvd.nn.encodings import HashGrid, HashGridConfig

    torch.manual_seed(0)
    grid = HashGrid(input_dim, HashGridConfig(log2_table_size=log2_table_size, backend=backend)).to(device)
    x = torch.rand(batch, input_dim, device=device, requires_grad=input_grad)
    grad_out = torch.randn(batch, grid.output_dim, device=device)

    def step() -> None:
        grid(x).backward(grad_out)
        if device == "cuda":
            torch.cuda.synchronize()
        grid.table.grad = x.grad = None  # what optimizer.zero_grad() does

    if measure == "memory":
        step()
        before, how = start_peak_memory(device)
        step()
        return {"peak_mib": peak_memory(device, how) - before, "memory": how}
    times = time_steps(step, steps)
    return {
        "backend": grid.backend,
        "median_pts_s": batch / statistics.median(times),
        "best_pts_s": batch / min(times),
        "median_ms": statistics.median(times) * 1e3,
    }


def run_subprocess(case: list, args: argparse.Namespace, device: str, measure: str) -> dict:
    """run_case in a fresh interpreter; its JSON result."""
    command = [sys.executable, "-m", "bench.hashgrid", "--device", device, "--steps", str(args.steps),
               "--case", json.dumps([*case, measure])] + (["--threads", str(args.threads)] if args.threads else [])
    # For the memory pass glibc returns every freed block >= 128 KiB to the OS, so the resident
    # size follows the live tensors instead of what the allocator keeps from earlier steps.
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072") if measure == "memory" else None
    proc = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    return json.loads(proc.stdout.strip().splitlines()[-1])


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
        input_dim, log2_table_size, batch, input_grad, backend, measure = json.loads(args.case)
        print(json.dumps(run_case(input_dim, log2_table_size, batch, input_grad, backend, device, args.steps,
                                  args.threads, measure)))
        return
    print(f"torch {torch.__version__}, {args.threads or torch.get_num_threads()} threads, device {device}")
    print(f"{'input':>5} {'table':>6} {'batch':>7} {'x grad':>6}  {'backend':<7} {'median pts/s':>13} "
          f"{'best pts/s':>11} {'median ms':>9} {'peak MiB':>9}")
    backends = ["torch"]
    if device == "cuda" and importlib.util.find_spec("tinycudann") is not None:
        backends.append("tcnn")
    memory = ""
    for case, backend in itertools.product(CASES, backends):
        row = run_subprocess([*case, backend], args, device, "time")
        row.update(run_subprocess([*case, backend], args, device, "memory"))
        memory = row["memory"]
        input_dim, log2_table_size, batch, input_grad = case
        print(f"{input_dim:>4}D {'2^' + str(log2_table_size):>6} {batch:>7} {'yes' if input_grad else 'no':>6}  "
              f"{row['backend']:<7} {row['median_pts_s']:>13,.0f} {row['best_pts_s']:>11,.0f} "
              f"{row['median_ms']:>9.1f} {row['peak_mib']:>9.1f}")
    print(f"\n16 levels x 2 features; peak MiB = {memory}")


if __name__ == "__main__":
    main()
