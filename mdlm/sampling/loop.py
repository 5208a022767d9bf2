"""``generate``: the one masked-diffusion denoising loop (MaskGIT / LLaDA / MDLM / moment sampler / Fast-dLLM).

    for each block (semi-autoregressive, :mod:`.blocks`):        runner.start_block()
        for each step i < S:
            logits  = runner.window(canvas)                      (:mod:`.runner`: cache, guidance, NFE)
            commits = policy.step(logits, schedule count)        (:mod:`.policies`)
            commit; ReMDM re-mask; EOS policy                    (:mod:`.step`; greedy fast path :mod:`.greedy`)
            history / callback(step, canvas, StepInfo)           (:mod:`.callbacks`)

With an adaptive greedy rule and CUDA graphs the same loop runs with the block advance on the device and one host
read-back per run of steps (:mod:`.ahead`). Only masked positions of the current block are candidates (everything
right of the block is never committed, as in LLaDA). Vectorised over the batch; Python loops only over blocks and
steps.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Iterable

import torch

from .ahead import LaunchAhead, launch_ahead_applies, worth_it
from .blocks import Block, BlockPlan
from .callbacks import Callback, StepInfo, compose
from .compiled import compiled_calls
from .config import MDLMGenerationConfig
from .greedy import GreedyStep
from .inputs import check_generator, prepare_canvas
from .policies import make_policy
from .runner import ModelRunner, decode_block_length
from .step import DenoiseStep, Sampling, StepReport
from .verify import VerifiedStep

Tensor = torch.Tensor


@dataclass
class SampleOutput:
    """Result of :func:`generate`.

    Attributes:
        sequences: (B, L) long, every generated position filled (non-generated positions unchanged).
        nfe: network evaluations per sequence (+1 per conditional and +1 per unconditional pass; a step whose
            canvas did not change reuses the previous logits and costs nothing).
        history: with ``return_history``: the canvas before the first step and after every step.
        steps: sampler steps run (≤ ``config.steps``).
        positions: canvas columns run through the network per sequence, summed over passes (L per full
            forward; W per dual-cached step; L − lo per prefix-cached step). Without a cache nfe · L.
        graph_replays: steps that ran as a CUDA-graph replay (``cuda_graphs``), 0 otherwise.
        step_graph_replays: steps whose greedy step after an eager forward ran as a CUDA-graph replay
            (``step_graph``, GPU), 0 otherwise.
        verify_rows: with ``verify``: draft canvases run by the verification forwards per sequence (each forward of
            K canvases counts 1 in ``nfe`` and K here); 0 otherwise.
        eos_early_filled: with ``eos_early_stop``: positions (summed over rows) filled with EOS by the early
            termination instead of being decoded.
        graph_capture_failures: CUDA-graph captures (``cuda_graphs`` / ``step_graph``) that failed, each with a
            warning; the steps they were for ran eagerly (the same samples, slower). 0 otherwise.
        launch_ahead: the block advance that ran when launch-ahead decoding applied (:mod:`.ahead`): "triton" (one
            kernel) or "torch" (PyTorch ops, also after a failed first launch of the kernel); None: launch-ahead did
            not apply (the loop of :mod:`.greedy` ran).
        ahead_reads: with ``launch_ahead``: the host read-backs of the state (one per run of steps); 0 otherwise.
    """

    sequences: Tensor
    nfe: int
    history: list[Tensor] | None = None
    steps: int = 0
    positions: int = 0
    graph_replays: int = 0
    verify_rows: int = 0
    eos_early_filled: int = 0
    step_graph_replays: int = 0
    graph_capture_failures: int = 0
    launch_ahead: str | None = None
    ahead_reads: int = 0


def generate(model_fn: Any, canvas: Tensor, *, mask_id: int, config: MDLMGenerationConfig | None = None,
             generate_mask: Tensor | None = None, cond_mask: Tensor | None = None,
             attention_mask: Tensor | None = None, suppress_tokens: Iterable[int] | Tensor | None = None,
             eos_id: int | None = None, generator: torch.Generator | None = None,
             callback: Callback | None = None, vocab_size: int | None = None,
             streamer: Any | None = None) -> SampleOutput:
    """Fill the masked positions of ``canvas`` with a masked-diffusion model (runs under ``torch.inference_mode``).

    Args:
        model_fn: any callable ``logits = f(x)`` or ``f(x, attention_mask)`` (B, L, V), an HF-style model, or —
            for ``cache_implementation`` / ``partial_cache`` — the model itself (``supports_block_kv_cache``).
        canvas: (B, L) token ids: context plus ``mask_id`` at the positions to generate.
        mask_id: id of [MASK]. config: an :class:`MDLMGenerationConfig` (defaults if None).
        generate_mask: (B, L) bool, positions to fill (default ``canvas == mask_id``); nothing else changes.
        cond_mask: (B, L) bool, condition positions masked in the unconditional (guidance) pass
            (default: every attended, non-generated, non-[MASK] position).
        attention_mask: (B, L), 0 = left padding: never attended, generated or changed.
        suppress_tokens: ids never sampled; ``mask_id`` is always added (ids ≥ V are ignored).
        eos_id: enables the EOS policy (:mod:`.eos`) when ``config.stop_at_eos``.
        generator: the only source of randomness (the canvas's device); a fresh seeded one if None.
        callback: ``callback(step, canvas, StepInfo)`` after every step (:mod:`.callbacks`).
        streamer: an object with ``put(canvas)`` and ``end()`` (a ``transformers`` ``BaseStreamer`` works):
            ``put`` gets a copy of the (B, L) canvas before the first step and after every step, ``end`` is
            called once at the end — for a live view of the tokens appearing (docs/sampling.md).
        vocab_size: the tokenizer's size: ids ≥ it are never sampled (an LM head padded to a multiple of 64 has
            rows no token decodes from).
    Raises:
        ValueError: missing ``mask_id``, masks of the wrong shape, steps < blocks, a cache with a plain callable.
        TypeError: ``config.torch_compile`` with a plain callable (it compiles an ``nn.Module``'s forward).
    Warns:
        UserWarning: ``config.steps`` exceeds the positions to generate (clamped).
    """
    cfg = MDLMGenerationConfig() if config is None else config
    if not isinstance(cfg, MDLMGenerationConfig):
        raise TypeError(f"config must be an MDLMGenerationConfig, got {type(cfg).__name__}")
    with torch.inference_mode(), compiled_calls(model_fn, cfg.torch_compile):
        x, gen, cond, model_am = prepare_canvas(canvas, mask_id, generate_mask, cond_mask, attention_mask)
        generator = check_generator(generator, x.device)
        history = [x.clone()] if cfg.return_history else None
        n_max = int(gen.sum(dim=1).max()) if x.shape[0] > 0 else 0
        if n_max == 0:
            if streamer is not None:
                streamer.end()
            return _output(x, 0, history, 0, 0, 0)
        steps = n_max if cfg.verify else cfg.steps  # verify: the reference commits one token per step
        if steps > n_max:
            warnings.warn(f"steps={steps} exceeds the {n_max} positions to generate; using steps={n_max}", stacklevel=2)
            steps = n_max
        plan = BlockPlan(gen, steps, decode_block_length(model_fn, cfg.block_length), cfg.schedule)
        runner = ModelRunner(model_fn, model_am, cond, mask_id, cache=cfg.cache_implementation, gen=gen,
                             partial=cfg.partial_cache, guidance=cfg.guidance_scale > 0, batch=cfg.guidance_batch,
                             compiled=cfg.torch_compile)
        run = Sampling(cfg, runner, make_policy(cfg), x, gen, mask_id, eos_id if cfg.stop_at_eos else None,
                       suppress_tokens, generator, vocab_size)
        if cfg.eos_early_stop:
            _early_stop(run, eos_id, cfg.pad_token_id)
        if streamer is not None:
            callback = compose(callback, lambda step, canvas, info: streamer.put(canvas))
            streamer.put(x.clone())
        kind = VerifiedStep if cfg.verify else GreedyStep if cfg.uses_greedy_step else DenoiseStep
        stepper = kind(run, want_info=callback is not None)
        step = 0
        ahead = _launch_ahead(stepper, plan, x, mask_id, callback is not None or history is not None)
        if ahead is not None:  # the greedy loop below with the block advance on the device (:mod:`.ahead`)
            step = ahead.run()
        for block in () if ahead is not None else plan.blocks(x, mask_id):
            runner.start_block()
            stepper.start_block(block)
            # verify: one verified commit per step at the least, however the step budget was split over blocks
            for i in range(block.hi - block.lo if cfg.verify else block.S):
                report = stepper(block, i)
                if report is None:  # nothing masked is left in the block
                    break
                if history is not None:
                    history.append(x.clone())
                if callback is not None:
                    callback(step, x.clone(), _info(report, block, i, step, plan.max_steps, runner.nfe))
                step += 1
                if report.finished:
                    break
            if not bool((gen & (x == mask_id)).any()):
                break
        if streamer is not None:
            streamer.end()
        out = _output(x, runner.nfe, history, step, runner.positions, stepper.graph_replays)
        out.verify_rows, out.eos_early_filled = getattr(stepper, "verify_rows", 0), run.early_filled
        out.step_graph_replays = getattr(stepper, "step_graph_replays", 0)
        out.graph_capture_failures = getattr(stepper, "graph_capture_failures", 0)
        if ahead is not None:
            out.launch_ahead, out.ahead_reads = ahead.backend, ahead.reads
        return out


def _launch_ahead(stepper: Any, plan: BlockPlan, x: Tensor, mask_id: int, per_step: bool) -> LaunchAhead | None:
    """A :class:`.ahead.LaunchAhead` for this generation where it applies (its blocks made up front), else None."""
    if not launch_ahead_applies(stepper, per_step):
        return None
    blocks = list(plan.blocks(x, mask_id))
    return LaunchAhead(stepper, blocks) if worth_it(blocks) else None


def _early_stop(run: Sampling, eos_id: int | None, pad_id: int | None) -> None:
    """Turn on EOS-aware early termination: EOS (and pad, when known) count as "the text has ended"."""
    if eos_id is None:
        raise ValueError("eos_early_stop needs the EOS id: pass eos_id to generate (the text pipeline passes the "
                         "tokenizer's)")
    run.early_eos_id = eos_id
    run.stop_ids = torch.tensor([eos_id] + ([] if pad_id is None else [pad_id]), device=run.x.device)


def _info(report: StepReport, block: Block, i: int, step: int, max_steps: int, nfe: int) -> StepInfo:
    committed = report.committed
    remasked = report.remasked if report.remasked is not None else torch.zeros_like(committed)
    return StepInfo(step=step, block=block.b, step_in_block=i, steps_in_block=block.S, committed=committed,
                    remasked=remasked, masked_fraction=report.masked_fraction.float(), guided=report.guided, nfe=nfe,
                    max_steps=max_steps)


def _output(x: Tensor, nfe: int, history: list[Tensor] | None, steps: int, positions: int, replays: int) -> SampleOutput:
    """Plain (not inference-mode) tensors, so callers may modify them in place."""
    with torch.inference_mode(False):
        hist = None if history is None else [h.clone() for h in history]
        return SampleOutput(x.clone(), nfe, hist, steps, positions, replays)
