"""TF32 settings that ``torch.compile`` can read back (transformers ≥ 5 with torch ≥ 2.9).

transformers' ``TrainingArguments`` switch TF32 on for compiled bf16 runs (and on/off for ``--tf32``) through torch's
new API, ``torch.backends.fp32_precision = "tf32"``. Inductor's ``max-autotune`` modes then read the setting back
through the legacy getter ``torch.get_float32_matmul_precision()``, which torch refuses once the new API has been
used ("you have used mix of the legacy and new APIs"), so ``--torch_compile_mode max-autotune-no-cudagraphs`` stopped
in matmul autotuning (measured on an H200, torch 2.11: docs/benchmarks/training.md).
"""

from __future__ import annotations

import torch

_LEGACY = {"tf32": "high", "ieee": "highest"}  # torch's documented equivalence of the two APIs for fp32 matmuls


def reconcile_matmul_precision() -> None:
    """State the generic new-API fp32 precision (``torch.backends.fp32_precision``, if set to "tf32" or "ieee") through
    the legacy setter as well, so both APIs read back without an error. Anything else is left alone."""
    mode = getattr(torch.backends, "fp32_precision", None)
    if mode in _LEGACY:
        torch.set_float32_matmul_precision(_LEGACY[mode])
