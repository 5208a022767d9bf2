"""The named sampler strategies that the sampling grids compare (their settings over the checkpoint's defaults)."""

from __future__ import annotations

from typing import Any

STRATEGIES: dict[str, dict[str, Any]] = {
    # MaskGIT order: unmask the most confident positions first (LLaDA's low-confidence remasking)
    "maskgit-confidence": dict(sampler="maskgit", remasking="low_confidence", confidence="prob"),
    # random order: MDLM's ancestral-like unmasking
    "maskgit-random": dict(sampler="maskgit", remasking="random"),
    # the moment sampler of Hayakawa et al. 2025, α = 1
    "moment": dict(sampler="moment", remasking="low_confidence", choice_temperature=1.0),
    # MaskGIT with the moment sampler's α = 1 held constant as Gumbel choice noise (not annealed): the sampler
    # Hayakawa et al. 2025 show the moment sampler approximates, so the two compare at matched temperature
    "maskgit-gumbel": dict(sampler="maskgit", remasking="low_confidence", confidence="prob", choice_temperature=1.0,
                           choice_anneal=False),
}
