"""The launch-ahead block advance alone: GPU time per step of the PyTorch ops and of the Triton kernel.

    python eval/bench_advance.py                                  # batch 1 and 16, 32 blocks of 32 columns
    python eval/bench_advance.py --batch 1 --out advance.json     # --overwrite to replace it
    python eval/bench_advance.py --device cpu --replays 5         # a smoke run (PyTorch ops only, no CUDA graph)

Each implementation (``mdlm/sampling/ahead.py``'s ``advance_buffers``, ``mdlm/sampling/ahead_triton.py``'s
``advance_triton``) advances a generation of ``--blocks`` blocks by one step, captured as one CUDA graph and
replayed back to back (``replay_seconds``): the microseconds per replay are what it adds to every launch-ahead
step (decoding at 1,024 tokens takes ~1.1 ms a step on one H200 for the 125M MDM). The tables are those a
generation builds (``advance_tables``). What each launches (eager, ``torch.profiler``: the CUDA events — kernels
and device copies) is listed beside as ``kernels``. On a CPU only the PyTorch ops run, eagerly, and ``kernels`` is
null (a smoke run).
"""

from __future__ import annotations

import sys
import time

import torch

from mdlm.cli import ArgumentParser, UserError, positive_int, refuse_overwrite, run_cli
from mdlm.evaluation.files import write_json
from mdlm.evaluation.kernel_timing import graph_us, kernels
from mdlm.sampling.ahead import advance_buffers, advance_tables
from mdlm.sampling.blocks import Block

PROMPT = 16  # prompt columns before the generated ones


def blocks(batch: int, n: int, width: int, steps: int) -> list[Block]:
    """``n`` blocks of ``width`` generated columns each after the prompt, every row masked there, an even schedule
    of ``steps`` steps a block."""
    counts = torch.linspace(width, 0, steps + 1).round().long().expand(batch, -1)  # (B, S+1)
    blk = torch.ones(batch, width, dtype=torch.bool)
    return [Block(k, steps, PROMPT + k * width, PROMPT + (k + 1) * width, blk, counts, counts,
                  torch.full((batch,), steps)) for k in range(n)]


def buffers(batch: int, width: int, device: str) -> tuple:
    """The step's input buffers the advance writes: two (W,) column buffers, (B·W,) flat, (B, W) mask, (B,) counts."""
    long = dict(dtype=torch.long, device=device)
    return ((torch.empty(width, **long), torch.empty(width, **long)), torch.empty(batch * width, **long),
            torch.empty(batch, width, dtype=torch.bool, device=device), torch.empty(batch, **long))


def main() -> int:
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=positive_int, nargs="+", default=[1, 16], help="rows (B)")
    p.add_argument("--blocks", type=positive_int, default=32, help="blocks of the generation (NB)")
    p.add_argument("--width", type=positive_int, default=32, help="block width (W)")
    p.add_argument("--steps", type=positive_int, default=32, help="steps a block's schedule allows (S)")
    p.add_argument("--replays", type=positive_int, default=2000, help="timed replays per run")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", help="write the rows as JSON here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    a = p.parse_args()
    refuse_overwrite(a.out, a.overwrite)
    impls = {"torch": advance_buffers}
    if a.device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"--device {a.device}: no CUDA device here (use --device cpu for a smoke run)")
        try:
            from mdlm.sampling.ahead_triton import advance_triton
        except Exception as e:
            raise UserError(f"the Triton advance does not import ({type(e).__name__}: {e}); pip install triton") from e
        impls["triton"] = advance_triton
    rows, cuda = [], a.device.startswith("cuda")
    for B in a.batch:
        for name, fn in impls.items():
            tables = advance_tables(blocks(B, a.blocks, a.width, a.steps), B, PROMPT + a.blocks * a.width,
                                    torch.device(a.device))
            bufs = buffers(B, a.width, a.device)
            state = torch.zeros(2, dtype=torch.long, device=a.device)
            left = torch.ones((), dtype=torch.long, device=a.device)  # never filled: the state counts steps
            body = lambda: fn(state, left, *tables, *bufs)  # noqa: E731
            us, n = graph_us(body, a.replays, cuda), kernels(body, cuda)
            rows.append({"batch": B, "impl": name, "us_per_step": round(us, 2), "kernels": n, "graphed": cuda})
            ops = f"{n} GPU ops (kernels, copies)" if cuda else "not counted on a CPU"
            print(f"| {B} | {name} | {us:.2f} µs | {ops} |", flush=True)
    meta = {"device": torch.cuda.get_device_name() if cuda else "cpu",
            "torch": torch.__version__, "blocks": a.blocks, "width": a.width, "steps": a.steps,
            "replays": a.replays, "command": " ".join(["python", *sys.argv]), "date": time.strftime("%Y-%m-%d")}
    if a.out:
        write_json(a.out, {"meta": meta, "rows": rows})
    return 0


if __name__ == "__main__":
    run_cli(main)()
