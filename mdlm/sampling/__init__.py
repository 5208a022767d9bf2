"""Sampling for masked diffusion models (MDM) of text and images.

    from mdlm.sampling import SamplerConfig, generate
    out = generate(model_fn, canvas, mask_id=MASK, config=SamplerConfig(steps=64, block_length=32,
                   schedule="even", temperature=0.0), eos_id=EOS,
                   generator=torch.Generator().manual_seed(0))
    out.sequences, out.nfe, out.history

Semantics (one module per concept):

* Commit counts (``sampler.py``): per row and block, after step i exactly ``counts[i+1]`` positions of
  the block stay masked, ``counts = masked_counts(N_b, S_b)`` (MaskGIT rule, any γ schedule) or
  ``even_masked_counts`` (``schedule="even"``, LLaDA). Blocks (``block_length``) run left to right
  over each row's generated positions; ``steps`` are split over blocks as evenly as possible, the
  first ``steps % num_blocks`` blocks getting one extra step. ``steps`` larger than the number of
  generated positions is clamped with a warning; a block never gets more steps than positions.
  With temperature 0, ``remasking="low_confidence"``, ``confidence="prob"``, ``schedule="even"`` this
  is token-for-token LLaDA's reference ``generate`` (tests/test_sampling.py checks it).
* Token choice (``token_choice.py``): temperature (0 = argmax), top-k, top-p; float64 Gumbel-max.
  ``suppress_tokens`` ∪ {mask_id} are never sampled.
* Position choice (``confidence.py``, ``remasking.py``, ``moment.py``): ``sampler="maskgit"`` samples
  a token everywhere then commits the k best by ``confidence`` (prob / margin / entropy / random),
  optionally with MaskGIT's annealed Gumbel choice noise; ``remasking="random"`` commits k random
  positions; ``"ancestral"`` commits each masked position with prob (γ(t)−γ(s))/γ(t) (MDLM; counts
  random). ``sampler="moment"`` is Hayakawa et al. 2025's choose-then-sample sampler with the
  hybrid greedy/moment split (details and caveats in ``moment.py``).
* Threshold decoding (Fast-dLLM): with ``threshold``, every masked position of the block with
  confidence ≥ threshold is committed, at least one per step and at least the schedule count, so
  ``steps`` is a maximum and a block ends as soon as it is filled (fewer NFE).
* Re-masking committed tokens (``remasking.py``): ReMDM-style, ``remask_committed`` = η.
* Classifier-free guidance (``cfg.py``): ``c + s·(c − u)``, condition positions masked in the
  unconditional pass, guidance interval in "masked fraction" or eMIGM "schedule" time; cond and
  uncond batched as 2B rows (``cfg_batch``); ``nfe`` counts both passes.
* EOS (``eos.py``): stop a row once everything still masked lies after a committed EOS, filling it
  with EOS; ``trim_at_eos`` for decoding.
* Callbacks (``callbacks.py``): ``callback(step, canvas, StepInfo)``; ``return_history``.
* Block KV cache (``config.cache``, Fast-dLLM; ``mdlm/modeling/kv_cache.py``): ``"dual"`` / ``"prefix"``
  refresh the cache with one full forward at each block start and run only the block (dual) or the
  block and its suffix (prefix) at the block's later steps; first step of a block exact, later steps
  approximate. ``SampleOutput.positions`` counts the positions computed.
* Model adapters (``adapters.py``): ``as_logits_fn`` for HF-style models (position ids that skip
  left padding) and plain callables.

Everything is vectorised over the batch and seeded only through the ``torch.Generator``.
"""

from .adapters import as_logits_fn, extract_logits, position_ids_from_mask
from .callbacks import StepInfo, compose, progress_callback
from .config import CACHE_MODES, CONFIDENCES, REMASKING, SAMPLERS, SamplerConfig
from .eos import eos_lengths, trim_at_eos
from .sampler import SampleOutput, generate

__all__ = [
    "SamplerConfig",
    "generate",
    "SampleOutput",
    "as_logits_fn",
    "extract_logits",
    "position_ids_from_mask",
    "StepInfo",
    "compose",
    "progress_callback",
    "trim_at_eos",
    "eos_lengths",
    "SAMPLERS",
    "REMASKING",
    "CONFIDENCES",
    "CACHE_MODES",
]
