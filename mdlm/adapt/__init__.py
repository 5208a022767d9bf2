"""AR → masked-diffusion adaptation: load a pretrained causal LM, add [MASK], wrap it bidirectionally
(:mod:`mdlm.modeling.causal_backbone`), score it against its source (:mod:`mdlm.adapt.ar_reference`)."""

from .source import add_mask_token, load_causal_lm, to_masked_diffusion

__all__ = ["add_mask_token", "load_causal_lm", "to_masked_diffusion"]
