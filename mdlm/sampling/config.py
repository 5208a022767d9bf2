"""``SamplerConfig``: every knob of :func:`mdlm.sampling.generate`, validated on construction.

Field groups (see :mod:`mdlm.sampling` for the exact semantics of each):

* loop: ``steps``, ``block_length``, ``schedule``, ``threshold``
* token choice: ``temperature``, ``top_k``, ``top_p``
* position choice: ``sampler`` ("maskgit" | "moment"), ``remasking``, ``confidence``,
  ``choice_temperature``, ``hybrid``
* re-masking of committed tokens (ReMDM-style): ``remask_committed``, ``remask_strategy``,
  ``remask_interval``
* classifier-free guidance: ``cfg_scale``, ``cfg_interval``, ``cfg_time``, ``cfg_batch``
* misc: ``stop_at_eos``, ``return_history``, ``reuse_logits``
* speed: ``cache`` ("none" | "prefix" | "dual", Fast-dLLM block KV cache)

Names are case-insensitive; an unknown name raises ``ValueError`` listing the valid ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mdlm.modeling.kv_cache import CACHE_MODES, check_cache_mode
from mdlm.schedules import SCHEDULE_NAMES, get_schedule

SAMPLERS = ("maskgit", "moment")
REMASKING = ("low_confidence", "random", "ancestral")
CONFIDENCES = ("prob", "margin", "entropy", "random")
REMASK_STRATEGIES = ("low_confidence", "random")
CFG_TIMES = ("masked", "schedule")
EVEN = "even"


def _choice(field_name: str, value: str, valid: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value.lower() not in valid:
        raise ValueError(f"unknown {field_name} {value!r}; valid: {', '.join(valid)}")
    return value.lower()


def _interval(field_name: str, value: tuple[float, float]) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{field_name} must be a pair (lo, hi), got {value!r}") from None
    if not (0.0 <= lo < hi <= 1.0):
        raise ValueError(f"{field_name} must satisfy 0 ≤ lo < hi ≤ 1, got {value!r}")
    return (lo, hi)


@dataclass
class SamplerConfig:
    """Configuration of the masked-diffusion sampler (validated in ``__post_init__``).

    Attributes:
        steps: number of sampler steps (model calls without CFG); with ``threshold`` a maximum.
            Clamped, with a warning, to the number of generated positions.
        block_length: semi-autoregressive block size over the generated positions (LLaDA);
            ``None`` = one block. Steps are split over blocks as evenly as possible (the first
            ``steps % num_blocks`` blocks get one more step); ``steps < num_blocks`` is an error.
        schedule: any name :func:`mdlm.schedules.get_schedule` accepts, or ``"even"`` (LLaDA's
            split, :func:`mdlm.schedules.even_masked_counts`).
        temperature: token temperature; 0 = argmax.
        top_k, top_p: token filters applied to the tempered logits (``None`` = off).
        sampler: ``"maskgit"`` (sample-then-choose) or ``"moment"`` (choose-then-sample, Hayakawa
            et al. 2025); see :mod:`mdlm.sampling.moment`.
        remasking: position choice of the maskgit sampler: ``"low_confidence"``, ``"random"`` or
            ``"ancestral"`` (MDLM; counts are then random, not exact).
        confidence: ``"prob"``, ``"margin"``, ``"entropy"`` (negative entropy) or ``"random"``.
        choice_temperature: maskgit sampler: MaskGIT's Gumbel scale on the log-confidence, annealed
            linearly to 0 over each block's steps (α_i = choice_temperature · (1 − (i+1)/S));
            moment sampler: the constant α of β = 1 + 1/α (0 = greedy).
        choice_anneal: maskgit sampler: anneal the choice noise as above (MaskGIT's code; default)
            or keep α constant over the steps (False: the sampler analysed by Hayakawa et al. 2025,
            which the moment sampler with the same α approximates).
        hybrid: moment sampler only: fraction of each step's positions picked greedily (exploit);
            the rest are drawn by the moment rule (explore). 0 = pure moment sampler.
        threshold: Fast-dLLM confidence threshold (``None`` = off): every masked position of the
            current block whose confidence ≥ threshold is committed, at least one per step and at
            least the schedule's count (so a block always ends within its steps); ``steps`` becomes
            a maximum and a block ends as soon as it is filled. Compared with the raw confidence
            (prob / margin in [0, 1], −entropy ≤ 0), not the noisy choice score.
        remask_committed: ReMDM-style fraction η of the block's previously committed tokens to
            send back to [MASK] after each non-final step (0 = off).
        remask_strategy: which committed tokens are re-masked: ``"low_confidence"`` (lowest
            confidence at commit time, ReMDM-conf) or ``"random"``.
        remask_interval: (lo, hi): re-mask only while the block's schedule time s satisfies
            lo < s ≤ hi (ReMDM-loop style window).
        cfg_scale: s in ``logits = c + s·(c − u)``; 0 = no guidance (no second pass).
        cfg_interval: (lo, hi): guide only while lo < τ ≤ hi, τ given by ``cfg_time``.
        cfg_time: ``"masked"`` — τ = fraction of the row's generated positions still masked before
            the step (default); ``"schedule"`` — τ = schedule time after the step,
            s = 1 − (i+1)/steps_in_block (eMIGM's convention, with s ≥ 1e-5 as in eMIGM).
        cfg_batch: run the conditional and unconditional passes as one batch of 2B rows.
        stop_at_eos: when ``eos_id`` is given: once every still-masked generated position of a row
            lies after a committed EOS, fill them with EOS and stop that row.
        return_history: keep the canvas after every step in ``SampleOutput.history``.
        reuse_logits: reuse the previous logits when the canvas did not change since the last
            model call (no new NFE). Requires a deterministic ``model_fn`` (eval mode).
        cache: block KV cache (Fast-dLLM, :mod:`mdlm.modeling.kv_cache`): ``"none"`` (default, every
            step runs the whole canvas), ``"dual"`` (one full forward at each block start caches
            every position's K/V; the block's later steps recompute only the block) or ``"prefix"``
            (later steps recompute the block and everything after it). Needs ``block_length``
            smaller than the generated length and a model with ``supports_block_kv_cache``
            (``MDLMForMaskedLM``). The first step of each block is exact; later steps are an
            approximation (cached K/V do not see the block's new tokens beyond layer 1).
        cuda_graphs: on a CUDA canvas, replay each block's later steps as one CUDA graph (forward +
            greedy confidence step + canvas update, :mod:`mdlm.sampling.graphs`): the same samples with
            far fewer kernel launches, for small models that decode launch-bound. Needs the greedy
            low-confidence setting (``uses_greedy_step``: temperature 0, confidence "prob", no choice
            noise, re-masking or guidance); a threshold, the EOS policy and any cache mode work. No
            effect on the CPU.
        substeps: moment sampler only: draw each step's chosen tokens in this many sequential groups
            (highest moment weight first), each group from logits that see the groups before it
            (Hayakawa et al. 2025: a longer trajectory at the same positions). 1 = all at once.
        partial_cache: with ``substeps > 1``: the groups after the first recompute only the step's
            chosen columns against the K/V cached by the step's full forward
            (:mod:`mdlm.modeling.partial_cache`; approximate beyond layer 1, Q = k positions per
            call) instead of a full forward each (exact, L positions per call). Needs a model with
            ``supports_block_kv_cache``, ``cache="none"`` and, with CFG, ``cfg_batch``.
    """

    steps: int = 64
    block_length: int | None = None
    schedule: str = "cosine"
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    sampler: str = "maskgit"
    remasking: str = "low_confidence"
    confidence: str = "prob"
    choice_temperature: float = 0.0
    choice_anneal: bool = True
    hybrid: float = 0.0
    threshold: float | None = None
    remask_committed: float = 0.0
    remask_strategy: str = "low_confidence"
    remask_interval: tuple[float, float] = (0.0, 1.0)
    cfg_scale: float = 0.0
    cfg_interval: tuple[float, float] = (0.0, 1.0)
    cfg_time: str = "masked"
    cfg_batch: bool = True
    stop_at_eos: bool = True
    return_history: bool = False
    reuse_logits: bool = True
    cache: str = "none"
    cuda_graphs: bool = False
    substeps: int = 1
    partial_cache: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"steps must be an integer ≥ 1, got {self.steps!r}")
        if self.block_length is not None and (
            isinstance(self.block_length, bool) or not isinstance(self.block_length, int) or self.block_length < 1
        ):
            raise ValueError(f"block_length must be None or an integer ≥ 1, got {self.block_length!r}")
        self.schedule = _check_schedule(self.schedule)
        self.sampler = _choice("sampler", self.sampler, SAMPLERS)
        self.remasking = _choice("remasking", self.remasking, REMASKING)
        self.confidence = _choice("confidence", self.confidence, CONFIDENCES)
        self.remask_strategy = _choice("remask_strategy", self.remask_strategy, REMASK_STRATEGIES)
        self.cfg_time = _choice("cfg_time", self.cfg_time, CFG_TIMES)
        self.cfg_interval = _interval("cfg_interval", self.cfg_interval)
        self.remask_interval = _interval("remask_interval", self.remask_interval)
        self.cache = check_cache_mode(self.cache)
        if self.cache != "none" and self.block_length is None:
            raise ValueError(
                f"cache={self.cache!r} caches the K/V outside the current block, so it needs semi-autoregressive "
                "blocks: set block_length (smaller than the generated length)"
            )

        _nonneg_finite("temperature", self.temperature)
        _nonneg_finite("choice_temperature", self.choice_temperature)
        _nonneg_finite("cfg_scale", self.cfg_scale)
        if self.top_k is not None and (isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 1):
            raise ValueError(f"top_k must be None or an integer ≥ 1, got {self.top_k!r}")
        if self.top_p is not None and not (0.0 < float(self.top_p) <= 1.0):
            raise ValueError(f"top_p must be None or in (0, 1], got {self.top_p!r}")
        if not (0.0 <= float(self.hybrid) <= 1.0):
            raise ValueError(f"hybrid must be in [0, 1], got {self.hybrid!r}")
        if not (0.0 <= float(self.remask_committed) < 1.0):
            raise ValueError(f"remask_committed must be in [0, 1), got {self.remask_committed!r}")
        if self.threshold is not None:
            thr = float(self.threshold)
            if not math.isfinite(thr):
                raise ValueError(f"threshold must be finite, got {self.threshold!r}")
            if self.confidence in ("prob", "margin", "random") and not (0.0 <= thr <= 1.0):
                raise ValueError(f"threshold must be in [0, 1] for confidence={self.confidence!r}, got {thr}")
            if self.confidence == "entropy" and thr > 0.0:
                raise ValueError(f"threshold must be ≤ 0 for confidence='entropy' (negative entropy), got {thr}")

        # combinations that have no meaning
        if self.sampler == "moment" and self.remasking != "low_confidence":
            raise ValueError("sampler='moment' chooses positions itself; use remasking='low_confidence'")
        if self.sampler == "moment" and self.threshold is not None:
            raise ValueError("threshold decoding is only available with sampler='maskgit'")
        if self.remasking == "ancestral" and self.threshold is not None:
            raise ValueError("threshold decoding cannot be combined with remasking='ancestral'")
        if not isinstance(self.cuda_graphs, bool):
            raise ValueError(f"cuda_graphs must be True or False, got {self.cuda_graphs!r}")
        if self.cuda_graphs and not self.uses_greedy_step:
            raise ValueError("cuda_graphs replays the greedy confidence step: it needs temperature=0, "
                             "remasking='low_confidence', confidence='prob', choice_temperature=0, no re-masking "
                             "and no guidance (cfg_scale=0)")
        if not isinstance(self.choice_anneal, bool):
            raise ValueError(f"choice_anneal must be True or False, got {self.choice_anneal!r}")
        if self.hybrid > 0 and self.sampler != "moment":
            raise ValueError("hybrid applies to sampler='moment' only")
        if isinstance(self.substeps, bool) or not isinstance(self.substeps, int) or self.substeps < 1:
            raise ValueError(f"substeps must be an integer ≥ 1, got {self.substeps!r}")
        if self.substeps > 1 and self.sampler != "moment":
            raise ValueError("substeps applies to sampler='moment' only (positions must be chosen before tokens)")
        if self.partial_cache:
            if self.substeps < 2:
                raise ValueError("partial_cache needs substeps ≥ 2 (it speeds up the groups after the first)")
            if self.cache != "none":
                raise ValueError(f"partial_cache cannot be combined with cache={self.cache!r}")
            if self.cfg_scale > 0 and not self.cfg_batch:
                raise ValueError("partial_cache with classifier-free guidance needs cfg_batch=True")

    @property
    def uses_greedy_step(self) -> bool:
        """True when every step is the fixed-shape greedy confidence step of :mod:`.fused_step`."""
        return (self.sampler == "maskgit" and self.remasking == "low_confidence" and self.confidence == "prob"
                and self.temperature == 0 and self.choice_temperature == 0
                and self.remask_committed == 0 and self.cfg_scale == 0)

    @property
    def uses_even_schedule(self) -> bool:
        """True when the commit counts follow LLaDA's even split."""
        return self.schedule == EVEN


def _nonneg_finite(name: str, value: float) -> None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be a finite number ≥ 0, got {value!r}")


def _check_schedule(name: str) -> str:
    valid = ", ".join((EVEN,) + tuple(SCHEDULE_NAMES))
    if not isinstance(name, str):
        raise ValueError(f"schedule must be a name; valid: {valid}")
    if name.lower() == EVEN:
        return EVEN
    try:
        get_schedule(name)
    except ValueError:
        raise ValueError(f"unknown schedule {name!r}; valid: {valid} (e.g. poly2)") from None
    return name
