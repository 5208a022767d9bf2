"""The training objective, recorded in the model config so a checkpoint says how it was trained.

``config.training_objective`` (a plain dict in ``config.json``) holds the objective kind (``mdm``: the
masked-diffusion ELBO family, ``ar``: the causal next-token baseline, ``bd3``: block diffusion with its
``block_size``) and, for ``mdm``, the schedule
γ(t), the weighting w(t) (``elbo`` = γ'/γ, ``maskgit`` = 1), the time truncation t_min, the masking
process (``mdm`` independent per token, ``maskgit`` exact count), antithetic time sampling, the loss
normalisation and the label-dropout rate — the axes of eMIGM's design space (You et al. 2025).
"""

from __future__ import annotations

from typing import Any

from .args import DiffusionArguments

OBJECTIVE_FIELDS = ("schedule", "weighting", "t_min", "masking", "antithetic", "normalization", "cond_dropout")


def objective_dict(diff: DiffusionArguments, objective: str = "mdm", block_size: int | None = None) -> dict[str, Any]:
    """The record of how a model is trained: ``{"objective": ..., <OBJECTIVE_FIELDS>}`` (only the kind for ``ar``;
    ``bd3``, block diffusion, adds its ``block_size``)."""
    if objective == "ar":
        return {"objective": objective}
    rec = {"objective": objective, **{k: getattr(diff, k) for k in OBJECTIVE_FIELDS}}
    if objective == "bd3":
        rec["block_size"] = block_size
    return rec


def record_objective(config: Any, diff: DiffusionArguments, objective: str = "mdm",
                     block_size: int | None = None) -> dict[str, Any]:
    """Set ``config.training_objective`` (saved with every checkpoint and the final model); returns it."""
    rec = objective_dict(diff, objective, block_size)
    config.training_objective = rec
    return rec
