"""Count the ATen operations of one decoding step (a CPU proxy for the GPU's kernel launches).

    python eval/count_ops.py --size 125m --gen-length 512 --block-length 32 --cache dual
    python eval/count_ops.py --size tiny --cache none

At batch 1 a graphed decoding step of a small model is latency-bound: its GPU time is about the number of kernels
times a few microseconds (docs/benchmarks/decoding.md, "What a step costs now"). This counts the ATen operations one
step dispatches on the CPU — view-like operations (no kernel on a GPU) left out — with random weights (the count does
not depend on them): the dual cache's step of one block (its refill done before counting) or, with ``--cache none``,
the full forward with the LM head on the block window. CPU and GPU decompose a few operations differently (e.g.
RMSNorm is one fused kernel on a GPU, five operations here), so compare counts with each other, not with a profile.
"""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from mdlm.cli import ArgumentParser, positive_int, run_cli
from mdlm.evaluation.benchmark_models import SIZES, build
from mdlm.sampling.cached_calls import BlockCachedLogits, WindowLogits

PROMPT = 32  # prompt columns before the generated ones
VIEWS = ("view", "_unsafe_view", "t", "transpose", "expand", "slice", "unsqueeze", "select", "split", "chunk",
         "as_strided", "detach", "alias", "reshape", "permute", "squeeze")


class OpCounter(TorchDispatchMode):
    """Counts every dispatched ATen operation but view-like ones, by name (``counts``) and in total (``total``)."""

    def __init__(self):
        super().__init__()
        self.counts: dict[str, int] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func._schema.name.removeprefix("aten::")
        if name not in VIEWS:
            self.counts[name] = self.counts.get(name, 0) + 1
        return func(*args, **(kwargs or {}))

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def count_step(size: str, gen_length: int, block_length: int, cache: str, prompt: int = PROMPT) -> OpCounter:
    """The operations of one decoding step of a randomly initialised model of ``size`` on a (1, prompt + gen_length)
    canvas, the block at the first generated column."""
    torch.manual_seed(0)
    model = build("mdlm", size, prompt + gen_length).eval()
    x = torch.randint(0, model.config.vocab_size - 1, (1, prompt + gen_length))
    am = torch.ones_like(x)
    lo, hi = prompt, prompt + block_length
    counter = OpCounter()
    with torch.no_grad():
        if cache == "dual":
            runner = BlockCachedLogits(model, "dual", am)
            runner.fill(x, lo, hi)
            with counter:
                runner.step(x, lo, hi)
        else:
            window = WindowLogits(model, am)
            with counter:
                window(x, lo, hi)
    return counter


@run_cli
def main(argv=None) -> int:
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", choices=list(SIZES), default="125m", help="model size (random weights)")
    p.add_argument("--gen-length", type=positive_int, default=512, help="generated columns of the canvas")
    p.add_argument("--block-length", type=positive_int, default=32, help="block width")
    p.add_argument("--cache", choices=["dual", "none"], default="dual", help="a dual-cached step or a full forward")
    p.add_argument("--top", type=positive_int, default=12, help="list this many operations by count")
    a = p.parse_args(argv)
    if a.block_length > a.gen_length:
        p.error("--block-length must be at most --gen-length")
    c = count_step(a.size, a.gen_length, a.block_length, a.cache)
    print(f"{a.size} | cache {a.cache} | 1 x {PROMPT + a.gen_length} columns | block {a.block_length}: "
          f"{c.total} ATen operations per step")
    for name, n in sorted(c.counts.items(), key=lambda kv: -kv[1])[: a.top]:
        print(f"  {name:48s} {n}")
    return 0


if __name__ == "__main__":
    main()
