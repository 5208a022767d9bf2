"""Certainty-forcing distillation (dParallel, Chen et al. 2025): teach a masked-diffusion LM to be confident, in
parallel, on its own greedy decoding trajectories, so that threshold / entropy-bounded commits fire.

A model trained only with the MDM ELBO is confident about a masked position mostly once its left neighbours are
known, so Fast-dLLM's threshold rule commits about one token per step (docs/benchmarks/decoding.md). Certainty
forcing fine-tunes the model on what it decodes itself:

1. ``teacher.py`` — trajectories: the model's own greedy, semi-autoregressive, one-token-per-step decodes of many
   prompts (``prompts.py``: paragraph openings of a training split).
2. ``masking.py`` — the semi-autoregressive forward mask of a trajectory: a random block is active, the blocks
   before it clean, the blocks after it all [MASK] — what the sampler's canvas looks like inside that block.
3. ``loss.py`` — cross-entropy to the trajectory on the active block's masked positions, plus the entropy of the
   (temperature-scaled) prediction where its argmax already equals the trajectory's token.
4. ``trainer.py`` / ``collator.py`` / ``args.py`` — the Trainer around them; ``recipes/distill_parallel.py`` drives it.

The distilled model is judged against LLaDA's loop on the *distilled* model (issue 17's rule: the same model);
its own loop's quality against the source's is reported beside it (eval/gpu/decode_distill.sh).
"""

from .loss import CertaintyLoss, certainty_forcing_loss
from .masking import SemiARMask, semi_ar_mask

__all__ = ["CertaintyLoss", "certainty_forcing_loss", "SemiARMask", "semi_ar_mask"]
