"""How HF Trainer's ``torch_compile`` compiles the model: whole, or one repeated block at a time.

Trainer hands ``torch.compile`` to accelerate, which compiles the whole model in one graph unless its
``TorchDynamoPlugin`` says ``use_regional_compilation`` — read from ``ACCELERATE_DYNAMO_USE_REGIONAL_COMPILATION`` when
the Trainer builds its accelerator (``Trainer.__init__``). Regional compilation (PyTorch's "regional compilation"
recipe; accelerate's ``compile_regions``) compiles each repeated decoder layer with the same code, so the first layer's
graph serves all of them: a shorter compile and, for SmolLM2-135M adapted to an MDM on one H200, 1.8× the tokens/s of
the whole-model graph (docs/backbones.md, "The compiled WSD run").
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

REGIONAL_ENV = "ACCELERATE_DYNAMO_USE_REGIONAL_COMPILATION"


@contextmanager
def regional_compilation(enabled: bool) -> Iterator[None]:
    """Within the block, accelerate compiles regionally iff ``enabled`` (an inherited setting is overridden either
    way); afterwards the variable is what it was. Wrap the Trainer's construction in it."""
    old = os.environ.get(REGIONAL_ENV)
    os.environ[REGIONAL_ENV] = "1" if enabled else "0"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(REGIONAL_ENV, None)
        else:
            os.environ[REGIONAL_ENV] = old
