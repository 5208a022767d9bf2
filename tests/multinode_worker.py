"""One rank of tests/test_multinode.py: recipes/train_text.py's ``train`` with a callback that writes what this
rank trained (``DIR/rank{R}.safetensors`` + ``rank{R}.json`` with the world size the recipe saw)."""

import importlib.util
import json
import os
import sys
from pathlib import Path

from safetensors.torch import save_file
from transformers import TrainerCallback

ROOT = Path(__file__).resolve().parents[1]


class DumpWeights(TrainerCallback):
    def __init__(self, out: str):
        self.out = out

    def on_train_end(self, args, state, control, model=None, **kw):
        os.makedirs(self.out, exist_ok=True)
        r = args.process_index
        save_file({k: v.detach().cpu().clone() for k, v in model.named_parameters()},  # tied weights once
                  os.path.join(self.out, f"rank{r}.safetensors"))
        with open(os.path.join(self.out, f"rank{r}.json"), "w", encoding="utf-8") as f:
            json.dump({"world_size": args.world_size, "process_index": r, "global_step": state.global_step}, f)


if __name__ == "__main__":
    spec = importlib.util.spec_from_file_location("train_text", ROOT / "recipes" / "train_text.py")
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    dump, argv = sys.argv[1], sys.argv[2:]
    recipe.train(argv, callbacks=(DumpWeights(dump),))
