"""``generate``: the masked-diffusion sampling loop (MaskGIT / LLaDA / MDLM / moment sampler).

Loop structure (vectorised over the batch; Python loops only over blocks and steps):

  for each block b (semi-autoregressive, left to right over each row's generated positions):
      N_b = masked positions of the row in block b          # (B,)
      counts = masked_counts(N_b, S_b)  or even_masked_counts  # (B, S_b + 1), per row
      for step i < S_b:
          logits = model(canvas)  (+ unconditional pass and CFG when guided)
          suppress ids; sample tokens / score positions (maskgit) or score / sample (moment)
          n = masked_now − counts[i+1]      (exact schedule; re-masked tokens are re-committed)
              threshold: n = max(n, #(conf ≥ threshold), 1)   (Fast-dLLM; ends the block early)
              ancestral: independent Bernoulli commits instead of a count
          commit the chosen n positions; optionally re-mask committed ones; EOS check; callback

The greedy low-confidence setting (LLaDA's default decoding: temperature 0, no choice noise, re-masking or
guidance, with or without a threshold; ``SamplerConfig.uses_greedy_step``) runs each step as one fixed-shape
function on the block window (:mod:`mdlm.sampling.fused_step`: the same commits up to confidences that agree to
float32 precision; no host synchronisation per step unless a threshold or the EOS policy decides when a block
ends), and with ``cuda_graphs`` each block's later steps replay as one CUDA graph (:mod:`mdlm.sampling.graphs`).
With a model that takes ``logits_positions=slice`` (``MDLMForMaskedLM``) the LM head runs on the block window only.

Only masked positions of the current block are candidates (everything right of the block has
−inf confidence, as in LLaDA). Logits are processed only on the block's column span.

Block KV cache (``config.cache``, Fast-dLLM; :mod:`mdlm.modeling.kv_cache`): at each block start one
full forward (1 NFE, L positions) fills the per-layer K/V cache and gives the block's logits; the
block's later steps run only the block ("dual", W positions) or the block and its suffix ("prefix",
L − lo positions) against that cache (1 NFE each). ``SampleOutput.positions`` counts the positions
actually computed, so that NFE-based speed claims stay honest.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Iterable

import torch

from mdlm.modeling.kv_cache import BlockCachedLogits, supports_kv_cache
from mdlm.modeling.partial_cache import PartialCachedLogits
from mdlm.schedules import even_masked_counts, get_schedule

from .adapters import LogitsFn, WindowLogits, as_logits_fn
from .callbacks import Callback, StepInfo
from .cfg import cfg_active, guide, schedule_time_after, unconditional_input
from .config import SamplerConfig
from .confidence import add_choice_noise, confidence_and_score, select_top
from .eos import eos_fill
from .fused_step import greedy_confidence_step
from .graphs import StepGraph, capture
from .moment import moment_choose, moment_log_probs, moment_log_weights, moment_tokens
from .remasking import ancestral_commit, ancestral_commit_prob, choose_remask
from .substeps import chosen_columns, substep_groups
from .token_choice import apply_suppression, sample_tokens, suppress_ids

Tensor = torch.Tensor


@dataclass
class SampleOutput:
    """Result of :func:`generate`.

    Attributes:
        sequences: (B, L) long, every generated position filled (non-generated positions unchanged).
        nfe: number of network evaluations per sequence: +1 for each conditional pass and +1 for each
            unconditional (CFG) pass, also when both run as one batched call of 2B rows; steps
            whose canvas did not change reuse the previous logits and cost nothing.
        history: with ``return_history``: the canvas before the first step and after every step,
            ``len(history) == steps + 1``; else None.
        steps: number of sampler steps run (≤ ``config.steps``).
        positions: token positions (canvas columns, padding included) run through the network per
            sequence, summed over all passes: L per full forward; with ``config.cache`` W per
            dual-cached step and L − lo per prefix-cached step. Without a cache it is nfe · L.
        graph_replays: steps that ran as a CUDA-graph replay (``config.cuda_graphs``), 0 otherwise.
    """

    sequences: Tensor
    nfe: int
    history: list[Tensor] | None = None
    steps: int = 0
    positions: int = 0
    graph_replays: int = 0


class _Evaluator:
    """Calls the model (conditional and, when guided, unconditional) for the block window's logits and
    keeps them until the canvas changes or the next block starts. With ``window_fn``
    (:class:`WindowLogits`) the model computes only the window's logits; otherwise ``fn`` gives every
    column's and the window is sliced out."""

    def __init__(self, fn: LogitsFn, model_am: Tensor | None, cond: Tensor, mask_id: int, batch_cfg: bool,
                 window_fn: WindowLogits | None = None):
        self.fn, self.model_am, self.cond, self.mask_id, self.batch_cfg = fn, model_am, cond, mask_id, batch_cfg
        self.window_fn = window_fn
        self.c: Tensor | None = None
        self.u: Tensor | None = None
        self.nfe = 0

    @property
    def positions(self) -> int:
        return self.nfe * self.cond.shape[1]

    def counters(self) -> list[int]:
        return [self.nfe]

    def set_counters(self, values: list[int]) -> None:
        self.nfe = values[0]

    def invalidate(self) -> None:
        self.c = self.u = None

    def start_block(self) -> None:
        """The kept logits belong to the previous block's window."""
        self.invalidate()

    def _run(self, x: Tensor, lo: int, hi: int) -> Tensor:
        """Logits of columns [lo, hi) for the R rows of ``x`` (B canvas rows, or 2B with the CFG rows) → (R, W, V)."""
        if self.window_fn is not None:
            return self.window_fn(x, lo, hi)
        am = self.model_am
        if am is not None and x.shape[0] != am.shape[0]:
            am = am.repeat(x.shape[0] // am.shape[0], 1)  # (2B, L)
        return self.fn(x, am)[:, lo:hi]

    def window(self, x: Tensor, need_u: bool, lo: int, hi: int) -> tuple[Tensor, Tensor | None]:
        """Conditional / unconditional logits of columns [lo, hi): (B, W, V) each (u None if unused)."""
        need_c, need_u = self.c is None, need_u and self.u is None
        if need_c and need_u and self.batch_cfg:
            out = self._run(torch.cat([x, unconditional_input(x, self.cond, self.mask_id)]), lo, hi)  # (2B, W, V)
            self.c, self.u = out.chunk(2, dim=0)
            self.nfe += 2
        else:
            if need_c:
                self.c = self._run(x, lo, hi)
                self.nfe += 1
            if need_u:
                self.u = self._run(unconditional_input(x, self.cond, self.mask_id), lo, hi)
                self.nfe += 1
        return self.c, self.u  # type: ignore[return-value]


class _CachedEvaluator:
    """Model calls with the block KV cache (Fast-dLLM dual / prefix cache, :mod:`mdlm.modeling.kv_cache`).

    The first call of a block is a full forward that refreshes the cache (1 NFE per pass); later
    calls of the block run only the block (dual) or the block and its suffix (prefix). With CFG the
    unconditional canvas has its own cache (or its own rows of a 2B-row cache with ``cfg_batch``), so
    both passes are filled at every block start; with ``cfg_batch`` both also run at every cached
    step (their rows share one call), otherwise the unconditional pass runs only when a row is guided.
    """

    def __init__(self, model: Any, mode: str, model_am: Tensor | None, cond: Tensor, mask_id: int,
                 batch_cfg: bool, cfg_on: bool):
        self.cond, self.mask_id, self.cfg_on, self.batch_cfg = cond, mask_id, cfg_on, batch_cfg
        if cfg_on and batch_cfg:
            am2 = None if model_am is None else torch.cat([model_am, model_am])
            self.runners = [BlockCachedLogits(model, mode, am2)]  # rows: B conditional, B unconditional
        else:
            self.runners = [BlockCachedLogits(model, mode, model_am) for _ in range(2 if cfg_on else 1)]
        self.span: tuple[int, int] | None = None
        self.c: Tensor | None = None
        self.u: Tensor | None = None
        self.nfe = 0

    @property
    def positions(self) -> int:
        per_row = sum(r.positions for r in self.runners)
        return per_row * (2 if self.cfg_on and self.batch_cfg else 1)

    def counters(self) -> list[int]:
        return [self.nfe] + [v for r in self.runners for v in (r.positions, r.calls)]

    def set_counters(self, values: list[int]) -> None:
        self.nfe = values[0]
        for j, r in enumerate(self.runners):
            r.positions, r.calls = values[1 + 2 * j], values[2 + 2 * j]

    def invalidate(self) -> None:
        self.c = self.u = None

    def start_block(self) -> None:
        """The next call refreshes the cache with a full forward."""
        self.span = None
        self.invalidate()

    def window(self, x: Tensor, need_u: bool, lo: int, hi: int) -> tuple[Tensor, Tensor | None]:
        """Conditional / unconditional logits of columns [lo, hi): (B, W, V) each (u None if unused)."""
        need_c, need_u = self.c is None, need_u and self.u is None
        if not (need_c or need_u):
            return self.c, self.u  # type: ignore[return-value]
        fill = self.span != (lo, hi)
        self.span = (lo, hi)

        def run(r: BlockCachedLogits, xx: Tensor) -> Tensor:
            return r.fill(xx, lo, hi) if fill else r.step(xx, lo, hi)

        if not self.cfg_on:
            self.c = run(self.runners[0], x)
            self.nfe += 1
        elif self.batch_cfg:
            xx = torch.cat([x, unconditional_input(x, self.cond, self.mask_id)])  # (2B, L)
            self.c, self.u = run(self.runners[0], xx).chunk(2, dim=0)  # (B, W, V) each
            self.nfe += 2
        else:
            if need_c or fill:
                self.c = run(self.runners[0], x)
                self.nfe += 1
            if need_u or fill:
                self.u = run(self.runners[1], unconditional_input(x, self.cond, self.mask_id))
                self.nfe += 1
        return self.c, self.u  # type: ignore[return-value]


class _Substeps:
    """The moment sampler's later token groups of a step (:mod:`.substeps`): logits from a full forward
    each (exact) or from the step's chosen columns against the partial cache."""

    def __init__(self, cfg: SamplerConfig, fn: LogitsFn, partial: PartialCachedLogits | None, model_am: Tensor | None,
                 cond: Tensor, mask_id: int, suppress_tokens: Any, generator: torch.Generator):
        self.cfg, self.fn, self.partial, self.am, self.cond, self.mask_id = cfg, fn, partial, model_am, cond, mask_id
        self.suppress_tokens, self.generator = suppress_tokens, generator
        self.nfe = 0
        self.positions = 0  # token positions computed per sequence by the sub-step forwards

    def _both(self, x: Tensor) -> Tensor:
        return torch.cat([x, unconditional_input(x, self.cond, self.mask_id)])  # (2B, L)

    def _am2(self) -> Tensor | None:
        return None if self.am is None else torch.cat([self.am, self.am])

    def _logits(self, xs: Tensor, sel_idx: tuple[Tensor, Tensor], any_guided: bool, lo: int, slot: Tensor,
                idx_abs: Tensor) -> tuple[Tensor, Tensor | None]:
        """Conditional (and unconditional) logits (Ms, V) at the selected window positions."""
        B, L = xs.shape
        b, w = sel_idx
        if self.partial is None:  # exact: full forwards
            if any_guided:
                out = self.fn(self._both(xs), self._am2())  # (2B, L, V)
                self.nfe += 2
                self.positions += 2 * L
                c, u = out.chunk(2, dim=0)
                return c[b, lo + w], u[b, lo + w]
            c = self.fn(xs, self.am)
            self.nfe += 1
            self.positions += L
            return c[b, lo + w], None
        rows = self.partial.cache.keys[0].shape[0] if self.partial.cache is not None else 0
        want = 2 * B if any_guided else B
        if rows != want:  # the step's forward cached other rows (e.g. reused logits): refill
            self.partial.fill(self._both(xs) if any_guided else xs, self._am2() if any_guided else self.am)
            self.nfe += 2 if any_guided else 1
            self.positions += (2 if any_guided else 1) * L
        q_slot = slot[b, w]  # (Ms,)
        if any_guided:
            q = self.partial.query(self._both(xs), self._am2(), torch.cat([idx_abs, idx_abs]))  # (2B, K, V)
            self.nfe += 2
            self.positions += 2 * idx_abs.shape[1]
            c, u = q.chunk(2, dim=0)
            return c[b, q_slot], u[b, q_slot]
        q = self.partial.query(xs, self.am, idx_abs)  # (B, K, V)
        self.nfe += 1
        self.positions += idx_abs.shape[1]
        return q[b, q_slot], None

    def tokens(self, x: Tensor, logw: Tensor, commit: Tensor, tokens_w: Tensor, guided: Tensor, lo: int,
               hi: int) -> Tensor:
        """Window tokens (B, W): group 0 keeps ``tokens_w`` (from the step's forward); each later group
        is redrawn from logits of the canvas holding the earlier groups' tokens."""
        cfg = self.cfg
        groups = substep_groups(logw, commit, cfg.substeps)  # (B, W)
        xs = x.clone()
        xs[:, lo:hi] = torch.where(groups == 0, tokens_w, xs[:, lo:hi])
        idx, slot = chosen_columns(commit)  # (B, K), (B, W)
        idx_abs = idx + lo
        any_guided = cfg.cfg_scale > 0 and bool(guided.any())
        ids = None
        for g in range(1, cfg.substeps):
            sel = groups == g  # (B, W)
            sel_idx = sel.nonzero(as_tuple=True)
            if sel_idx[0].numel() == 0:
                continue
            c, u = self._logits(xs, sel_idx, any_guided, lo, slot, idx_abs)
            logits = c.float()  # (Ms, V)
            if u is not None:
                logits = guide(logits, u.float(), float(cfg.cfg_scale), guided[sel_idx[0]])
            if ids is None:
                ids = suppress_ids(self.suppress_tokens, self.mask_id, logits.shape[-1], x.device)
            logits = apply_suppression(logits, ids)
            logp = moment_log_probs(logits, cfg.temperature, cfg.top_k, cfg.top_p)  # (Ms, V)
            new = moment_tokens(logp, float(cfg.choice_temperature), cfg.temperature, self.generator)  # (Ms,)
            tokens_w = tokens_w.index_put(sel_idx, new)
            xs[:, lo:hi] = torch.where(sel, tokens_w, xs[:, lo:hi])
        return tokens_w


def _scatter(where: Tensor, values: Tensor, fill: float | int, idx: tuple[Tensor, Tensor] | None = None) -> Tensor:
    """Place the (M,) ``values`` at the True entries of ``where`` (B, W), ``fill`` elsewhere.

    ``idx`` = ``where.nonzero(as_tuple=True)`` when the caller has it: indexing with it needs no
    host synchronisation (a boolean index does one per call)."""
    out = torch.full(where.shape, fill, dtype=values.dtype, device=values.device)
    if idx is None:
        out[where] = values
    else:
        out[idx] = values
    return out


def _as_bool_mask(name: str, m: Any, shape: torch.Size, device: torch.device) -> Tensor:
    if not isinstance(m, Tensor):
        m = torch.as_tensor(m)
    if m.shape != shape:
        raise ValueError(f"{name} must have the canvas shape {tuple(shape)}, got {tuple(m.shape)}")
    return m.to(device=device) != 0 if m.dtype != torch.bool else m.to(device)


def _prepare(canvas: Tensor, mask_id: int | None, generate_mask: Any, cond_mask: Any, attention_mask: Any):
    if mask_id is None:
        raise ValueError("mask_id is required (the id of the [MASK] token)")
    if not isinstance(canvas, Tensor) or canvas.dim() != 2:
        raise ValueError(f"canvas must be a (B, L) tensor of token ids, got {getattr(canvas, 'shape', type(canvas))}")
    if canvas.dtype.is_floating_point or canvas.dtype == torch.bool or canvas.dtype.is_complex:
        raise ValueError(f"canvas must hold integer token ids, got dtype {canvas.dtype}")
    x = canvas.to(torch.long).clone()
    shape, dev = x.shape, x.device
    model_am = None
    if attention_mask is None:
        am = torch.ones(shape, dtype=torch.bool, device=dev)
    else:
        am = _as_bool_mask("attention_mask", attention_mask, shape, dev)
        model_am = am.long()
    gen = (x == mask_id) if generate_mask is None else _as_bool_mask("generate_mask", generate_mask, shape, dev)
    gen = gen & am  # padding is never generated
    if cond_mask is None:
        cond = am & ~gen & (x != mask_id)
    else:
        cond = _as_bool_mask("cond_mask", cond_mask, shape, dev) & am
        if bool((cond & gen).any()):
            raise ValueError("cond_mask and generate_mask overlap; condition positions are never generated")
    x.masked_fill_(gen, mask_id)
    return x, gen, cond, model_am


def _check_generator(generator: torch.Generator | None, device: torch.device) -> torch.Generator:
    if generator is None:
        g = torch.Generator(device=device)
        g.seed()
        return g
    if torch.device(generator.device).type != device.type:
        raise ValueError(f"generator is on {generator.device} but the canvas is on {device}")
    return generator


def _check_cache(cfg: SamplerConfig, model: Any, n_max: int) -> None:
    """Clear errors for a block KV cache that cannot work (see ``SamplerConfig.cache``)."""
    if not supports_kv_cache(model):
        raise ValueError(
            f"cache={cfg.cache!r} needs the model itself with the block KV-cache interface "
            f"(supports_block_kv_cache, e.g. MDLMForMaskedLM), got {type(model).__name__}; "
            "pass the model, not a wrapped function, or use cache='none'"
        )
    if cfg.block_length is None or cfg.block_length >= n_max:
        raise ValueError(
            f"cache={cfg.cache!r} needs block_length smaller than the number of positions to generate "
            f"({n_max}), got block_length={cfg.block_length}: with one block there is nothing outside the "
            "block to reuse between steps"
        )


def _block_plan(gen: Tensor, n_max: int, steps: int, block_length: int | None) -> tuple[Tensor, list[int]]:
    """Block index of each generated position (−1 elsewhere) and the step budget of each block."""
    bl = block_length or n_max
    nb = math.ceil(n_max / bl)
    if steps < nb:
        raise ValueError(f"steps ({steps}) must be ≥ the number of blocks ({nb} blocks of {bl} positions)")
    rank = gen.long().cumsum(dim=1) - 1  # (B, L) index among the row's generated positions
    block_id = torch.where(gen, rank // bl, torch.full_like(rank, -1))
    return block_id, [steps // nb + int(j < steps % nb) for j in range(nb)]


@dataclass
class _Graphs:
    """CUDA-graph state of one :func:`generate` call (:mod:`.graphs`)."""

    enabled: bool = True
    warmed: bool = False  # one eager step has run with the step shapes (lazy kernel set-up done)
    replays: int = 0


def _greedy_block(x: Tensor, gen: Tensor, blk: Tensor, lo: int, hi: int, counts: Tensor, counts_cpu: Tensor, S: int,
                  b: int, *, evaluator: Any, ids: Tensor | None, suppress_tokens: Any, mask_id: int,
                  eos_id: int | None, threshold: float | None, reuse_logits: bool, n_gen: Tensor,
                  history: list[Tensor] | None, callback: Callback | None, step: int, max_steps: int,
                  graphs: _Graphs | None) -> tuple[int, Tensor | None]:
    """The steps of one block with the fixed-shape greedy confidence step (:mod:`.fused_step`), ``x``
    updated in place; with ``graphs``, later steps replay a CUDA graph of the whole step (:mod:`.graphs`).

    Host synchronisations: none per step with the schedule's counts alone (the count table, on the host,
    says how many masked positions each step leaves); one per step with a threshold or the EOS policy
    (did the canvas change; is the block filled). Returns the step counter and the suppressed ids."""
    no_guidance = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    window = torch.arange(lo, hi, device=x.device)  # (W,)
    n_after = counts[:, 1].clone()  # (B,) the running step's count, a fixed tensor for graph replays
    synced = threshold is not None or eos_id is not None
    graph: StepGraph | None = None
    delta: list[int] = []

    def body() -> tuple[Tensor, Tensor]:
        nonlocal ids
        c, _ = evaluator.window(x, False, lo, hi)  # (B, W, V)
        if ids is None:
            ids = suppress_ids(suppress_tokens, mask_id, c.shape[-1], x.device)
        new, committed, flags = greedy_confidence_step(c, x, window, blk, n_after, ids, gen, mask_id, eos_id,
                                                       threshold)
        x.copy_(new)
        return committed, flags

    for i in range(S):
        masked_fraction = None
        if callback is not None:
            masked_fraction = (gen & (x == mask_id)).sum(dim=1).double() / n_gen.clamp_min(1)  # (B,)
        n_after.copy_(counts[:, i + 1])
        if not reuse_logits:
            evaluator.invalidate()
        replayed = False
        if graphs is not None and graphs.enabled and i > 0 and evaluator.c is None:
            if graph is None and graphs.warmed:
                before = evaluator.counters()
                graph = capture(body)  # records one step without running it
                after = evaluator.counters()
                evaluator.set_counters(before)
                delta = [a - b_ for a, b_ in zip(after, before)]
                graphs.enabled = graph is not None
                if graph is None:
                    evaluator.invalidate()  # the failed capture left unexecuted logits behind
            if graph is not None:
                graph.replay()
                evaluator.set_counters([v + d for v, d in zip(evaluator.counters(), delta)])
                graphs.replays += 1
                committed, flags = graph.out
                committed = committed.clone() if callback is not None else committed
                replayed = True
        if not replayed:
            committed, flags = body()
            if graphs is not None and i > 0:
                graphs.warmed = True
        if synced:
            changed, left = flags.tolist()  # the step's one host synchronisation
        else:  # exact without EOS policy or threshold: each row commits counts[i] − counts[i+1]
            changed = bool((counts_cpu[:, i] > counts_cpu[:, i + 1]).any())
            left = bool(counts_cpu[:, i + 1].max() > 0)
        if changed:
            evaluator.invalidate()
        if history is not None:
            history.append(x.clone())
        if callback is not None:
            info = StepInfo(step=step, block=b, step_in_block=i, steps_in_block=S, committed=committed,
                            remasked=torch.zeros_like(gen), masked_fraction=masked_fraction.float(),
                            guided=no_guidance, nfe=evaluator.nfe, max_steps=max_steps)
            callback(step, x.clone(), info)
        step += 1
        if not left:
            break
    return step, ids


def generate(
    model_fn: Any,
    canvas: Tensor,
    *,
    mask_id: int,
    config: SamplerConfig | None = None,
    generate_mask: Tensor | None = None,
    cond_mask: Tensor | None = None,
    attention_mask: Tensor | None = None,
    suppress_tokens: Iterable[int] | Tensor | None = None,
    eos_id: int | None = None,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> SampleOutput:
    """Fill the masked positions of ``canvas`` with a masked-diffusion model.

    Args:
        model_fn: ``f(x, attention_mask) -> logits (B, L, V)``, an HF-style model or ``f(x)``
            (wrapped by :func:`as_logits_fn`). Must be deterministic (eval mode) for ``reuse_logits``.
        canvas: (B, L) token ids: context tokens plus ``mask_id`` at the positions to generate.
        mask_id: id of [MASK].
        config: :class:`SamplerConfig` (defaults if None).
        generate_mask: (B, L) bool, positions to fill (default ``canvas == mask_id``); they are set to
            [MASK] first. Positions outside it are never changed.
        cond_mask: (B, L) bool, condition positions replaced by [MASK] in the unconditional CFG pass
            (default: every attended, non-generated, non-[MASK] position).
        attention_mask: (B, L), 0 = left padding: never attended, never generated, never changed.
        suppress_tokens: ids never sampled; ``mask_id`` is always added (ids ≥ V are ignored).
        eos_id: enables the EOS policy of :mod:`mdlm.sampling.eos` (``config.stop_at_eos``).
        generator: the only source of randomness (same device as ``canvas``); a fresh randomly seeded
            one if None.
        callback: ``callback(step, canvas, info)`` after every step (:mod:`mdlm.sampling.callbacks`).

    Raises:
        ValueError: missing ``mask_id``, a mask of the wrong shape, steps < number of blocks, …
    Warns:
        UserWarning: when ``config.steps`` exceeds the number of positions to generate (clamped).
    """
    cfg = SamplerConfig() if config is None else config
    if not isinstance(cfg, SamplerConfig):
        raise TypeError(f"config must be a SamplerConfig, got {type(cfg).__name__}")
    x, gen, cond, model_am = _prepare(canvas, mask_id, generate_mask, cond_mask, attention_mask)
    generator = _check_generator(generator, x.device)
    fn = as_logits_fn(model_fn)
    B, L = x.shape
    history = [x.clone()] if cfg.return_history else None

    n_gen = gen.sum(dim=1)  # (B,)
    n_max = int(n_gen.max()) if B > 0 else 0
    if n_max == 0:
        return SampleOutput(x, 0, history, 0)
    steps = cfg.steps
    if steps > n_max:
        warnings.warn(f"steps={steps} exceeds the {n_max} positions to generate; using steps={n_max}",
                      stacklevel=2)
        steps = n_max
    block_id, block_steps = _block_plan(gen, n_max, steps, cfg.block_length)
    max_steps = sum(block_steps)
    schedule = None if cfg.uses_even_schedule else get_schedule(cfg.schedule)
    gamma = get_schedule("linear") if schedule is None else schedule  # ancestral only

    evaluator: _Evaluator | _CachedEvaluator
    partial: PartialCachedLogits | None = None
    if cfg.partial_cache:
        if not supports_kv_cache(model_fn):
            raise ValueError(f"partial_cache needs the model itself with the K/V cache interface "
                             f"(supports_block_kv_cache), got {type(model_fn).__name__}")
        partial = PartialCachedLogits(model_fn)
        evaluator = _Evaluator(partial.fill, model_am, cond, mask_id, cfg.cfg_batch)  # full forwards fill the cache
    elif cfg.cache == "none":
        window_fn = WindowLogits(model_fn, model_am) if WindowLogits.supported(model_fn) else None
        evaluator = _Evaluator(fn, model_am, cond, mask_id, cfg.cfg_batch, window_fn)
    else:
        _check_cache(cfg, model_fn, n_max)
        evaluator = _CachedEvaluator(model_fn, cfg.cache, model_am, cond, mask_id, cfg.cfg_batch, cfg.cfg_scale > 0)
    stored_conf = torch.zeros(B, L, dtype=torch.float64, device=x.device)
    sub = _Substeps(cfg, fn, partial, model_am, cond, mask_id, suppress_tokens, generator)
    cfg_on = cfg.cfg_scale > 0
    no_guidance = torch.zeros(B, dtype=torch.bool, device=x.device)
    remasking_on = cfg.remask_committed > 0
    eos_on = eos_id is not None and cfg.stop_at_eos
    ids: Tensor | None = None
    col = torch.arange(L, device=x.device)
    step = 0
    graphs = _Graphs() if cfg.cuda_graphs and x.is_cuda and cfg.uses_greedy_step else None

    for b, budget in enumerate(block_steps):
        in_block = gen & (block_id == b)  # (B, L)
        n_block = (in_block & (x == mask_id)).sum(dim=1)  # (B,)
        if int(n_block.max()) == 0:
            continue
        S = min(budget, int(n_block.max()))
        n_cpu = n_block.cpu()  # count tables on the CPU: a short loop over steps, not S tiny GPU kernels
        counts_cpu = even_masked_counts(n_cpu, S) if schedule is None else schedule.masked_counts(n_cpu, S)
        counts = counts_cpu.to(x.device)  # (B, S + 1)
        cols = col[in_block.any(dim=0)]
        lo, hi = int(cols[0]), int(cols[-1]) + 1
        blk = in_block[:, lo:hi]  # (B, W)
        evaluator.start_block()
        if cfg.uses_greedy_step:
            step, ids = _greedy_block(x, gen, blk, lo, hi, counts, counts_cpu, S, b, evaluator=evaluator, ids=ids,
                                      suppress_tokens=suppress_tokens, mask_id=mask_id,
                                      eos_id=eos_id if eos_on else None, threshold=cfg.threshold,
                                      reuse_logits=cfg.reuse_logits, n_gen=n_gen, history=history,
                                      callback=callback, step=step, max_steps=max_steps, graphs=graphs)
        else:
            for i in range(S):
                masked = blk & (x[:, lo:hi] == mask_id)  # (B, W)
                # one host sync per step: the (M,) indices of the masked positions, reused for every
                # gather / scatter below (boolean indexing would synchronise at each use)
                midx = masked.nonzero(as_tuple=True)  # 2 × (M,)
                if midx[0].numel() == 0:
                    break
                n_masked = masked.sum(dim=1)  # (B,)
                masked_fraction = (gen & (x == mask_id)).sum(dim=1).double() / n_gen.clamp_min(1)  # (B,)
                if cfg_on:
                    guided = cfg_active(cfg.cfg_time, cfg.cfg_interval, masked_fraction, schedule_time_after(i, S))
                    guided &= n_masked > 0
                    any_guided = bool(guided.any())
                else:
                    guided, any_guided = no_guidance, False
                if not cfg.reuse_logits:
                    evaluator.invalidate()
                c, u = evaluator.window(x, any_guided, lo, hi)  # (B, W, V) each
                # only the M masked positions of the block need tokens / scores: work on (M, V)
                logits = c[midx].float()  # (M, V)
                if u is not None and any_guided:
                    rows = guided[midx[0]]  # (M,)
                    logits = guide(logits, u[midx].float(), float(cfg.cfg_scale), rows)
                if ids is None:
                    ids = suppress_ids(suppress_tokens, mask_id, logits.shape[-1], x.device)
                logits = apply_suppression(logits, ids)

                s_lin = 1.0 - (i + 1) / S  # linear time after the step
                target = (n_masked - counts[:, i + 1]).clamp_min(0)  # (B,) exact schedule count
                if cfg.sampler == "moment":
                    alpha = float(cfg.choice_temperature)
                    logp = moment_log_probs(logits, cfg.temperature, cfg.top_k, cfg.top_p)  # (M, V) f64
                    logw = _scatter(masked, moment_log_weights(logp, alpha), float("-inf"), midx)  # (B, W)
                    commit = moment_choose(logw, masked, target, alpha, float(cfg.hybrid), generator)
                    tok = moment_tokens(logp, alpha, cfg.temperature, generator)  # (M,)
                    if cfg.substeps > 1:
                        tok = sub.tokens(x, logw, commit, _scatter(masked, tok, mask_id, midx), guided, lo, hi)[midx]
                    conf = _scatter(masked, logp.gather(-1, tok.unsqueeze(-1)).squeeze(-1).exp(), 0.0, midx)
                else:
                    tok = sample_tokens(logits, cfg.temperature, cfg.top_k, cfg.top_p, generator)  # (M,)
                    kind = "random" if cfg.remasking == "random" else cfg.confidence
                    conf_m, score_m = confidence_and_score(logits, tok, kind, generator)  # (M,) f64
                    conf = _scatter(masked, conf_m, 0.0, midx)  # (B, W)
                    if cfg.remasking == "ancestral":
                        t_now = torch.tensor(1.0 - i / S, dtype=torch.float64)
                        t_next = torch.tensor(s_lin, dtype=torch.float64)
                        p = ancestral_commit_prob(float(gamma.gamma(t_now)), float(gamma.gamma(t_next)))
                        commit = ancestral_commit(masked, 1.0 if i == S - 1 else p, generator)
                    else:
                        n = target
                        if cfg.threshold is not None:
                            n_thr = (masked & (conf >= float(cfg.threshold))).sum(dim=1)
                            n = torch.maximum(torch.maximum(n, n_thr), (n_masked > 0).long())
                        alpha = float(cfg.choice_temperature) * (s_lin if cfg.choice_anneal else 1.0)
                        score_m = add_choice_noise(score_m, alpha, generator)
                        commit = select_top(_scatter(masked, score_m, float("-inf"), midx), masked, n)  # (B, W)
                tokens = _scatter(masked, tok, mask_id, midx)  # (B, W)

                xw = torch.where(commit, tokens, x[:, lo:hi])
                changed_w = commit
                remasked_w: Tensor | None = None
                if remasking_on:
                    stored_conf[:, lo:hi] = torch.where(commit, conf.double(), stored_conf[:, lo:hi])
                    r_lo, r_hi = cfg.remask_interval
                    if i < S - 1 and r_lo < s_lin <= r_hi:
                        old = blk & (xw != mask_id) & ~commit
                        remasked_w = choose_remask(old, stored_conf[:, lo:hi], float(cfg.remask_committed),
                                                   cfg.remask_strategy, generator)
                        xw = xw.masked_fill(remasked_w, mask_id)
                        changed_w = commit | remasked_w
                x[:, lo:hi] = xw

                eos_committed = eos_fill(x, gen, mask_id, eos_id) if eos_on else None  # (B, L) or None
                # one more host sync: did the canvas change (else the logits stay valid)?
                changed = changed_w.any() if eos_committed is None else changed_w.any() | eos_committed.any()
                if bool(changed):
                    evaluator.invalidate()

                if history is not None:
                    history.append(x.clone())
                if callback is not None:
                    committed = torch.zeros_like(gen)
                    committed[:, lo:hi] = commit
                    if eos_committed is not None:
                        committed |= eos_committed
                    remasked = torch.zeros_like(gen)
                    if remasked_w is not None:
                        remasked[:, lo:hi] = remasked_w
                    info = StepInfo(step=step, block=b, step_in_block=i, steps_in_block=S, committed=committed,
                                    remasked=remasked, masked_fraction=masked_fraction.float(), guided=guided,
                                    nfe=evaluator.nfe, max_steps=max_steps)
                    callback(step, x.clone(), info)
                step += 1

        if not bool((gen & (x == mask_id)).any()):
            break

    return SampleOutput(x, evaluator.nfe + sub.nfe, history, step, evaluator.positions + sub.positions,
                        graphs.replays if graphs is not None else 0)
