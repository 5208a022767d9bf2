"""Exact self-speculative decoding (``verify=True``): parallel drafts, checked so the output is greedy's own.

The reference is greedy one-token-per-step decoding: at every step the most confident masked position of the block
(log p(x̂) in float32, ties → lower index, :func:`.fused_step.greedy_confidence_step`'s ranking) gets its argmax
token, then the EOS policy runs. One step here:

1. From the logits of the current canvas x⁰ (kept from the previous step's verification forward), the draft:
   d₁ … d_n = the positions the policy would commit in parallel (top-``verify_draft`` by confidence, or the
   Fast-dLLM threshold / factor picks, or the EB picks — always including the greedy choice), ordered by
   confidence, with their argmax tokens; n ≤ ``verify_draft``.
2. Canvases x^j = x⁰ with d₁ … d_j applied (and the EOS policy), j = 1 … n, run as ONE forward of n·B rows.
3. Draft d_{j+1} is accepted when greedy decoding of x^j would commit exactly it (same position, same token);
   the longest accepted prefix d₁ … d_a is kept (a ≥ 1: d₁ is greedy's choice on x⁰), and the logits of x^a, from
   the same forward, are the next step's.

So every kept commit is the one greedy decoding makes, given forwards that compute each row as they would alone
(batch-invariant forwards: true on the CPU for the project's models; on a GPU the kernels for n·B rows may round
differently from those for B rows — compare tokens there). ``nfe`` counts forwards; ``verify_rows`` the canvases
they ran per sequence. The canvas is not built for a draft that would finish the block (nothing left to verify).
"""

from __future__ import annotations

import torch

from .adaptive import entropy_bounded_count, factor_count
from .blocks import Block
from .confidence import select_top
from .eos import eos_fill
from .graphs import CountedGraph, capture_counted
from .step import Sampling, StepReport

Tensor = torch.Tensor


def greedy_view(logits: Tensor, masked: Tensor, suppress: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Greedy decoding's view of a window: tokens (R, W), log p(x̂) (R, W) float32, 1 − p(x̂) (R, W), and its
    one-hot choice (R, W) bool (the most confident masked position; none for a row with nothing masked)."""
    lg = logits.index_fill(-1, suppress, float("-inf"))  # (R, W, V)
    tok = lg.argmax(dim=-1)  # (R, W)
    logp = torch.log_softmax(lg, dim=-1, dtype=torch.float32)  # (R, W, V)
    log_conf = logp.gather(-1, tok.unsqueeze(-1)).squeeze(-1)  # (R, W)
    rest = logp.scatter(-1, tok.unsqueeze(-1), float("-inf")).exp().sum(dim=-1)  # (R, W) = 1 − p
    score = torch.where(masked, log_conf, float("-inf"))
    choice = select_top(score, masked, torch.ones(masked.shape[0], dtype=torch.long, device=masked.device))
    return tok, score, rest, choice


def draft_count(rule: str, cfg, logits: Tensor, masked: Tensor, rest: Tensor, suppress: Tensor) -> Tensor:
    """How many commits to draft per row (B,) (≥ 1 where anything is masked), capped at ``cfg.verify_draft``."""
    if rule == "fast_dllm":
        n = factor_count(rest, masked, cfg.factor) if cfg.factor is not None else \
            (masked & (rest <= 1.0 - float(cfg.threshold))).sum(dim=-1)
    elif rule == "eb":
        logp = torch.log_softmax(logits.index_fill(-1, suppress, float("-inf")), dim=-1, dtype=torch.float32)
        ent = -(logp.exp() * logp.clamp_min(torch.finfo(logp.dtype).min)).sum(dim=-1)  # (B, W)
        n = entropy_bounded_count(ent, masked, float(cfg.eb_gamma))
    else:
        n = masked.sum(dim=-1)
    n = torch.maximum(n, masked.any(dim=-1).long())
    return torch.minimum(n, masked.sum(dim=-1)).clamp_max(cfg.verify_draft)


def draft_canvases(x: Tensor, lo: int, score: Tensor, tok: Tensor, masked: Tensor, n: Tensor,
                   K: int) -> tuple[Tensor, Tensor, Tensor]:
    """The K draft canvases x^1 … x^K (K, B, L): x^j = x with the j most confident drafted commits applied (a row
    with fewer drafts repeats its last canvas). Also the drafts' positions (B, K) and tokens (B, K) in order."""
    B, W = masked.shape
    order = torch.argsort(score.double(), dim=-1, descending=True, stable=True)[:, :K]  # (B, K) window positions
    d_tok = tok.gather(-1, order)  # (B, K)
    rank = torch.full((B, W), K, dtype=torch.long, device=x.device)
    rank.scatter_(-1, order, torch.arange(K, device=x.device).expand(B, K).contiguous())
    rank = torch.where(rank < n.unsqueeze(-1), rank, K)  # (B, W) the draft index of each position (K: none)
    j = torch.arange(1, K + 1, device=x.device).view(K, 1, 1)  # (K, 1, 1)
    xw = x[:, lo:lo + W]
    canv = x.unsqueeze(0).repeat(K, 1, 1)  # (K, B, L)
    canv[:, :, lo:lo + W] = torch.where(rank.unsqueeze(0) < j, tok.unsqueeze(0), xw.unsqueeze(0))
    return canv, order, d_tok


class VerifiedStep:
    """Drop-in for :class:`.step.DenoiseStep` when ``config.verify`` (see the module docstring).

    With ``config.cuda_graphs`` every step has fixed shapes — always K = min(verify_draft, block width) draft
    canvases, the current logits kept in a fixed buffer, one host synchronisation per step (the most masked
    positions left in a row) — and on a GPU each block's steps after its first are replayed as one CUDA graph
    (:mod:`.graphs`). The commits are the same; the verification forwards run more canvases (K instead of the drafts
    needed). A block's last step (one masked position per row at most) commits greedy's choice without a forward."""

    def __init__(self, run: Sampling, want_info: bool):
        r = run.runner
        if r.blocks or r.exact or r.partial is not None:
            raise ValueError("verify runs full forwards of several draft canvases per row; this model decodes with a "
                             "K/V cache (a block-diffusion model uses block_exact): turn verify off for it")
        self.run, self.want_info = run, want_info
        self.rule = run.config.unmasking
        self.verify_rows = 0
        self.fixed = bool(run.config.cuda_graphs)  # fixed-shape steps (on any device); graphs on a GPU only
        self.graphs_on = self.fixed and run.x.is_cuda
        self.warmed, self.replays = False, 0
        self.graph: CountedGraph | None = None
        self.c_buf: Tensor | None = None  # (B, W, V) logits of the current canvas (fixed storage within a block)
        self.most_left = 0  # most masked positions left in a row of the block after the last fixed-shape step

    @property
    def graph_replays(self) -> int:
        return self.replays

    @property
    def graph_capture_failures(self) -> int:
        return int(self.fixed and self.run.x.is_cuda and not self.graphs_on)  # a failed capture turns graphs off

    def start_block(self, block: Block) -> None:
        self.block, self.graph, self.c_buf, self.most_left = block, None, None, block.hi - block.lo

    def __call__(self, block: Block, i: int) -> StepReport | None:
        return self.fixed_step(block, i) if self.fixed else self.dynamic_step(block, i)

    def dynamic_step(self, block: Block, i: int) -> StepReport | None:
        """One verified step, running only the draft canvases it needs (one host synchronisation for their count)."""
        run, x, lo, hi = self.run, self.run.x, block.lo, block.hi
        masked = block.blk & (x[:, lo:hi] == run.mask_id)  # (B, W)
        n_left = masked.sum(dim=-1)  # (B,)
        if not bool(n_left.any()):
            return None
        frac = run.masked_fraction() if self.want_info else None
        c, _ = run.runner.window(x, False, lo, hi)  # (B, W, V): kept from the last verification when possible
        n, drafts = self.drafts(c, masked)
        # canvases needed: to verify drafts 2..n, and the last one unless it finishes the row's block
        need = torch.where(n < n_left, n, n - 1)  # (B,)
        K, K_run = torch.stack([n.max(), need.max()]).tolist()  # the step's host synchronisation
        committed, kept = self.commit(n, drafts, K, K_run)
        if kept is not None:  # the logits of the kept canvas come from the verification forward
            run.runner.c = kept
        left = bool((block.blk & (x[:, lo:hi] == run.mask_id)).any())
        return StepReport(committed if self.want_info else None, None, frac, run.no_guidance, finished=not left)

    def fixed_step(self, block: Block, i: int) -> StepReport | None:
        """One verified step of fixed shapes: eager, or a replay of the block's captured graph."""
        run, x, lo, hi = self.run, self.run.x, block.lo, block.hi
        if self.c_buf is None:  # the block's first step: the logits of the canvas (one forward)
            if not bool((block.blk & (x[:, lo:hi] == run.mask_id)).any()):
                return None
            c, _ = run.runner.window(x, False, lo, hi)  # (B, W, V)
            self.c_buf = c.clone()
        elif self.most_left <= 1:  # one masked position per row at most: greedy's choice needs no verification
            run.runner.c = self.c_buf  # the kept logits of the canvas: the dynamic step runs no forward here
            report = self.dynamic_step(block, i)  # it fills the block; should anything be left, start afresh:
            self.graph, self.c_buf = None, None  # the buffer is stale now, and the graph reads that buffer
            return report
        frac = run.masked_fraction() if self.want_info else None
        out = self.replay() if self.graphs_on and i > 0 else None
        if out is None:
            out = self.fixed_body()
            self.warmed = self.warmed or self.graphs_on
        committed, most_left = out
        self.most_left = int(most_left)  # the step's one host synchronisation
        if self.want_info:
            committed = committed.clone()
        return StepReport(committed, None, frac, run.no_guidance, finished=self.most_left == 0)

    def fixed_body(self) -> tuple[Tensor, Tensor]:
        """The step on fixed tensors (run.x, the logits buffer): → (committed (B, L) bool, the most masked positions
        left in a row () long)."""
        blk, x, mask_id = self.block, self.run.x, self.run.mask_id
        masked = blk.blk & (x[:, blk.lo:blk.hi] == mask_id)  # (B, W)
        n, drafts = self.drafts(self.c_buf, masked)  # n (B,): 0 where nothing is masked
        K = min(int(self.run.config.verify_draft), blk.hi - blk.lo)
        committed, kept = self.commit(n, drafts, K, K)
        self.c_buf.copy_(kept)
        return committed, (blk.blk & (x[:, blk.lo:blk.hi] == mask_id)).sum(dim=-1).max()

    def drafts(self, c: Tensor, masked: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor, Tensor]]:
        """Greedy's view of the window logits c (B, W, V) and the policy's draft count n (B,) (≥ 1 where anything is
        masked); → (n, (tokens, scores, masked, suppressed ids)) for :meth:`commit`."""
        run = self.run
        sup = run.suppressed(c.shape[-1])
        tok, score, rest, _ = greedy_view(c, masked, sup)
        return draft_count(self.rule, run.config, c, masked, rest, sup), (tok, score, masked, sup)

    def commit(self, n: Tensor, drafts: tuple[Tensor, Tensor, Tensor, Tensor], K: int,
               K_run: int) -> tuple[Tensor, Tensor | None]:
        """Build the K draft canvases, verify the first K_run in one forward (none: only greedy's own choice is kept)
        and write the accepted prefix into run.x; → (committed (B, L) bool, the kept canvas's logits (B, W, V), None
        without a forward)."""
        run, blk = self.run, self.block
        x, lo, hi = run.x, blk.lo, blk.hi
        B, L = x.shape
        tok, score, masked, sup = drafts
        canv, order, d_tok = draft_canvases(x, lo, score, tok, masked, n, K)  # (K, B, L)
        flat = canv.reshape(K * B, L)
        if run.eos_id is not None:
            eos_fill(flat, run.gen.repeat(K, 1), run.mask_id, run.eos_id)  # the EOS policy after every commit
        accepted, logits = torch.ones_like(n), None  # (B,) d₁ is greedy's own choice
        if K_run > 0:
            accepted, logits = self.verify(flat[: K_run * B], hi - lo, lo, hi, order, d_tok, n, K_run, sup)
        a = torch.minimum(accepted, n).clamp_min(1)  # (B,) a row with nothing masked keeps canvas 1 = x
        new = canv.gather(0, (a - 1).view(1, B, 1).expand(1, B, L)).squeeze(0)  # (B, L)
        committed = new != x
        x.copy_(new)
        run.runner.invalidate()
        if logits is None:
            return committed, None
        kept = (a - 1).clamp_max(K_run - 1).view(1, B, 1, 1).expand(1, B, *logits.shape[2:])
        return committed, logits.gather(0, kept).squeeze(0)  # (B, W, V)

    def replay(self) -> tuple[Tensor, Tensor] | None:
        """Capture the block's step once (after a warm-up step), then replay it; None: run it eagerly."""
        runner = self.run.runner
        if self.graph is None and self.warmed:
            self.graph = capture_counted(self.fixed_body, self._counters, self._set_counters)  # records, does not run
            if self.graph is None:  # capture failed (warned): eager from now on
                self.graphs_on = False
                runner.invalidate()
        if self.graph is None:
            return None
        self.graph.replay()
        self.replays += 1
        return self.graph.out

    def _counters(self) -> list[int]:
        return [*self.run.runner.counters(), self.verify_rows]

    def _set_counters(self, values: list[int]) -> None:
        *runner, self.verify_rows = values
        self.run.runner.set_counters(runner)

    def verify(self, flat: Tensor, W: int, lo: int, hi: int, order: Tensor, d_tok: Tensor, n: Tensor, K: int,
               sup: Tensor) -> tuple[Tensor, Tensor]:
        """One forward of the K·B canvases; → (accepted commits per row (B,), their logits (K, B, W, V))."""
        run = self.run
        B = order.shape[0]
        before = run.runner.counters()
        run.runner.invalidate()
        lg, _ = run.runner.window(flat, False, lo, hi)  # (K·B, W, V)
        run.runner.set_counters([before[0] + 1, run.runner.positions])  # one forward of K canvases per row
        self.verify_rows += K
        blk = self.block.blk.repeat(K, 1)  # (K·B, W)
        masked = blk & (flat[:, lo:hi] == run.mask_id)
        tok, _, _, choice = greedy_view(lg, masked, sup)  # (K·B, W)
        pos = torch.where(choice.any(dim=-1), choice.long().argmax(dim=-1), -1).view(K, B)  # greedy's position
        tk = tok.gather(-1, pos.clamp_min(0).view(K * B, 1)).view(K, B)  # and token
        nxt = torch.arange(1, K + 1, device=flat.device).view(K, 1)  # canvas j verifies draft j + 1
        d_pos = order.gather(-1, nxt.clamp_max(order.shape[1] - 1).T.expand(B, K)).T  # (K, B)
        d_t = d_tok.gather(-1, nxt.clamp_max(order.shape[1] - 1).T.expand(B, K)).T  # (K, B)
        ok = (pos == d_pos) & (tk == d_t) & (nxt < n.unsqueeze(0))  # (K, B)
        accepted = 1 + ok.long().cumprod(dim=0).sum(dim=0)  # (B,)
        return accepted, lg.view(K, B, *lg.shape[1:])
