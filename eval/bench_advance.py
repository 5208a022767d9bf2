"""The launch-ahead block advance alone: GPU time per step of the PyTorch ops and of the Triton kernel.

    python eval/bench_advance.py                                  # batch 1 and 16, 32 blocks of 32 columns
    python eval/bench_advance.py --batch 1 --out advance.json     # --overwrite to replace it
    python eval/bench_advance.py --device cpu --replays 5         # a smoke run (PyTorch ops only, no CUDA graph)

Each implementation (``mdlm/sampling/ahead.py``'s ``advance_buffers``, ``mdlm/sampling/ahead_triton.py``'s
``advance_triton``) advances a generation of ``--blocks`` blocks by one step, captured as one CUDA graph and
replayed back to back (``replay_seconds``): the microseconds per replay are what it adds to every launch-ahead
step (decoding at 1,024 tokens takes ~1.1 ms a step on one H200 for the 125M MDM). What each launches (eager,
``torch.profiler``: the CUDA events — kernels and device copies —, on a CPU its top-level ATen ops) is listed
beside as ``kernels``. On a CPU only the PyTorch ops run, eagerly (a smoke run).
"""

from __future__ import annotations

import json
import sys
import time

import torch
from torch.profiler import ProfilerActivity, profile

from mdlm.cli import ArgumentParser, UserError, positive_int, refuse_overwrite, run_cli
from mdlm.sampling.ahead import advance_buffers
from mdlm.sampling.graphs import replay_seconds


def tables(batch: int, blocks: int, width: int, steps: int, device: str) -> tuple[list, tuple]:
    """Tables of a generation (blocks × width columns after a 16-token prompt, ``steps`` steps a block) and buffers."""
    cols = 16 + torch.arange(blocks * width, device=device).view(blocks, width)  # (NB, W)
    L = 16 + blocks * width
    flat = (torch.arange(batch, device=device)[None, :, None] * L + cols[:, None, :]).flatten(1)  # (NB, B·W)
    blk = torch.ones(blocks, batch, width, dtype=torch.bool, device=device)  # (NB, B, W)
    per = torch.linspace(width, 0, steps + 1, device=device).round().long()  # (S+1,)
    counts = per.view(1, -1, 1).expand(blocks, -1, batch).contiguous()  # (NB, S+1, B)
    long = dict(dtype=torch.long, device=device)
    bufs = ((torch.empty(width, **long), torch.empty(width, **long)), torch.empty(batch * width, **long),
            torch.empty(batch, width, dtype=torch.bool, device=device), torch.empty(batch, **long))
    return [cols, flat, blk, counts], bufs


def kernels_launched(fn) -> int:
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA] if torch.cuda.is_available()
                 else [ProfilerActivity.CPU]) as prof:
        fn()
    if torch.cuda.is_available():
        return sum(1 for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA)
    return sum(1 for e in prof.events() if e.name.startswith("aten::") and e.cpu_parent is None)


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
        try:
            from mdlm.sampling.ahead_triton import advance_triton
        except Exception as e:
            raise UserError(f"the Triton advance does not import ({type(e).__name__}: {e}); pip install triton") from e
        impls["triton"] = advance_triton
    rows = []
    for B in a.batch:
        for name, fn in impls.items():
            tabs, bufs = tables(B, a.blocks, a.width, a.steps, a.device)
            state = torch.zeros(2, dtype=torch.long, device=a.device)
            left = torch.ones((), dtype=torch.long, device=a.device)  # never filled: the state counts steps
            body = lambda: fn(state, left, *tabs, *bufs)  # noqa: E731
            body()
            n = kernels_launched(body)
            if a.device.startswith("cuda"):
                us = replay_seconds(body, a.replays) * 1e6
            else:
                t = time.perf_counter()
                for _ in range(a.replays):
                    body()
                us = (time.perf_counter() - t) / a.replays * 1e6
            rows.append({"batch": B, "impl": name, "us_per_step": round(us, 2), "kernels": n,
                         "graphed": a.device.startswith("cuda")})
            what = "GPU ops (kernels, copies)" if a.device.startswith("cuda") else "top-level aten ops"
            print(f"| {B} | {name} | {us:.2f} µs | {n} {what} |", flush=True)
    meta = {"device": torch.cuda.get_device_name() if a.device.startswith("cuda") else "cpu",
            "torch": torch.__version__, "blocks": a.blocks, "width": a.width, "steps": a.steps,
            "replays": a.replays, "command": " ".join(["python", *sys.argv]), "date": time.strftime("%Y-%m-%d")}
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    run_cli(main)()
