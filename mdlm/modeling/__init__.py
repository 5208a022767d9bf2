"""The bidirectional transformer, registered with transformers' Auto classes."""

from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM

from .configuration import MDLMConfig
from .kv_cache import CACHE_MODES, BlockKVCache
from .modeling import MDLMForMaskedLM, MDLMModel, MDLMPreTrainedModel
from .causal_backbone import CausalBackboneConfig, CausalBackboneForMaskedLM  # noqa: F401  (registers mdlm_causal)

AutoConfig.register("mdlm", MDLMConfig, exist_ok=True)
AutoModel.register(MDLMConfig, MDLMModel, exist_ok=True)
AutoModelForMaskedLM.register(MDLMConfig, MDLMForMaskedLM, exist_ok=True)

__all__ = ["MDLMConfig", "MDLMModel", "MDLMForMaskedLM", "MDLMPreTrainedModel", "BlockKVCache",
           "CACHE_MODES"]
