"""mdlm — masked-diffusion models of text and images: one core, one sampler.

    from mdlm import MDLMConfig, MDLMForMaskedLM, get_schedule, mask_tokens, diffusion_loss, elbo_nll
"""

from .quiet import quiet_deepspeed_cpu_guess, quiet_weight_bars

quiet_weight_bars()
quiet_deepspeed_cpu_guess()

from .evaluation.elbo import ElboResult, elbo_nll  # noqa: E402
from .loss import diffusion_loss  # noqa: E402
from .masking import mask_tokens, sample_times  # noqa: E402
from .modeling import MDLMConfig, MDLMForMaskedLM, MDLMModel  # noqa: E402
from .schedules import Schedule, even_masked_counts, get_schedule  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "ElboResult",
    "MDLMConfig",
    "MDLMForMaskedLM",
    "MDLMModel",
    "Schedule",
    "diffusion_loss",
    "elbo_nll",
    "even_masked_counts",
    "get_schedule",
    "mask_tokens",
    "sample_times",
]

try:  # the sampler package (mdlm.sampling)
    from .sampling import MDLMGenerationConfig, SampleOutput, SamplerConfig, generate  # noqa: F401

    __all__ += ["MDLMGenerationConfig", "SampleOutput", "SamplerConfig", "generate"]
except ImportError:  # pragma: no cover - while the sampler is absent
    pass
