"""Sampling for masked diffusion models (MDM) of text and images.

    from mdlm.sampling import MDLMGenerationConfig, generate
    out = generate(model, canvas, mask_id=MASK, eos_id=EOS, generator=torch.Generator().manual_seed(0),
                   config=MDLMGenerationConfig(steps=64, block_length=32, schedule="even", temperature=0.0))
    out.sequences, out.nfe, out.history

One loop, three parts (see docs/sampling.md):

* ``loop.py`` — :func:`generate`: blocks → steps → runner → policy → commit / re-mask / EOS → callbacks.
* ``runner.py`` — :class:`ModelRunner`: every way of calling the network (full canvas, block window, dual /
  prefix K/V cache, partial cache), classifier-free guidance batching, NFE and position counters.
* ``policies.py`` — unmasking policies with one ``step``: confidence (MaskGIT / LLaDA, threshold; greedy fast
  path and CUDA graphs in ``greedy.py``), fast_dllm (Fast-dLLM's threshold or factor rule), eb (the
  entropy-bounded sampler), ancestral (MDLM), moment (Hayakawa et al. 2025; hybrid, sub-steps); the adaptive
  counts and the EOS early stop in ``adaptive.py``; exact self-speculative decoding (``verify``) in ``verify.py``.

The maths, one module per concept: ``blocks.py`` (block plan, exact commit counts), ``token_choice.py``
(temperature, top-k / top-p, float64 Gumbel-max), ``confidence.py`` (prob / margin / entropy / random, MaskGIT
choice noise, top-k selection), ``moment.py``, ``remasking.py`` (ancestral commits, ReMDM re-masking),
``cfg.py`` (guidance), ``eos.py`` (EOS policy, trimming), ``substeps.py``, ``fused_step.py``.
Settings: :class:`MDLMGenerationConfig` (``config.py``; checks in ``validation.py``), which also builds every
command line's sampler flags (:func:`add_generation_arguments`) and is saved as ``generation_config.json``.

With temperature 0, ``unmasking="confidence"``, ``confidence="prob"``, ``schedule="even"`` and blocks this is
token for token LLaDA's reference ``generate`` (tests/test_sampling.py checks it). Everything is vectorised over
the batch and seeded only through the ``torch.Generator``.
"""

from .adapters import as_logits_fn, extract_logits, position_ids_from_mask
from .callbacks import StepInfo, compose, progress_callback
from .config import (CACHE_IMPLEMENTATIONS, CONFIDENCES, UNMASKING, MDLMGenerationConfig, SamplerConfig,
                     add_generation_arguments, given_settings)
from .eos import eos_lengths, trim_at_eos
from .loop import SampleOutput, generate
from .runner import ModelRunner

CACHE_MODES = CACHE_IMPLEMENTATIONS

__all__ = [
    "MDLMGenerationConfig",
    "SamplerConfig",
    "add_generation_arguments",
    "given_settings",
    "generate",
    "SampleOutput",
    "ModelRunner",
    "as_logits_fn",
    "extract_logits",
    "position_ids_from_mask",
    "StepInfo",
    "compose",
    "progress_callback",
    "trim_at_eos",
    "eos_lengths",
    "UNMASKING",
    "CONFIDENCES",
    "CACHE_MODES",
]
