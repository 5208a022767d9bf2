"""Chat with a masked-diffusion text checkpoint in the terminal and watch each answer unmask.

    python recipes/chat.py --model runs/shakespeare_tiny
    python recipes/chat.py --model runs/wordnet_lora --gen-length 64 --steps 32 --block-length 32
    python recipes/chat.py --model DIR --adapter ADAPTER_DIR --temperature 0 --unmasking confidence --threshold 0.9
    python recipes/chat.py --model runs/shakespeare_tiny --frame-delay 0.2     # slow motion

Multi-turn: the conversation is rendered with the tokenizer's chat template (or, without one, the plain
<|user|>/<|assistant|> turns mdlm's SFT trains on) and trimmed to the model's context with a notice.
The answer canvas is redrawn in place at every step (dim ░ = still masked, green = committed by this step).
Ctrl-C stops the current answer and keeps the conversation; /reset clears it; /quit or Ctrl-D leaves.
Sampler defaults come from the checkpoint's generation_config.json; every flag overrides them.
"""

from __future__ import annotations


import torch  # noqa: E402

import mdlm  # noqa: E402,F401
from mdlm.cli import ArgumentParser, UserError, non_negative_float, run_cli, set_torch_threads  # noqa: E402
from mdlm.demo.conversation import Conversation  # noqa: E402
from mdlm.demo.stream import add_sampler_flags, given_sampler_flags, sampler_config  # noqa: E402
from mdlm.demo.terminal import ChatSession, chat_loop  # noqa: E402
from mdlm.pipelines import load_for_generation  # noqa: E402


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="text checkpoint dir, or a LoRA adapter dir")
    p.add_argument("--adapter", help="LoRA adapter dir to apply on top of --model")
    p.add_argument("--system", help="system message put before the conversation")
    p.add_argument("--no-color", action="store_true", help="no ANSI colours in the canvas")
    p.add_argument("--no-live", action="store_true", help="print only the final answers (no canvas redraw)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--frame-delay", type=non_negative_float, default=0.0, metavar="SECONDS",
                   help="keep each redrawn canvas on screen at least this long: slow motion to watch the unmasking")
    g = p.add_argument_group("sampler (defaults: the checkpoint's generation_config.json)")
    names = add_sampler_flags(g)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, help="CPU threads for torch (on a busy CPU, 1 is often fastest for small models)")
    a = p.parse_args(argv)
    a.sampler = given_sampler_flags(a, names)
    return a


@run_cli
def main() -> int:
    a = parse_args()
    set_torch_threads(a.threads)
    loaded = load_for_generation(a.model, a.adapter, device=a.device)
    if getattr(loaded.model.config, "image_layout", None) or loaded.tokenizer is None:
        raise UserError(f"--model {a.model} is not a text checkpoint (no tokenizer / an image model)")
    config, gen_length = sampler_config(loaded.defaults, **a.sampler)
    context = getattr(loaded.model.config, "max_position_embeddings", None)
    session = ChatSession(loaded.model, loaded.tokenizer, config, gen_length, context, a.seed, Conversation(a.system),
                          frame_delay=a.frame_delay)
    chat_loop(session, name=loaded.model_dir, live=None if not a.no_live else False, color=not a.no_color)
    return 0


if __name__ == "__main__":
    main()
