"""Web demo: watch a masked-diffusion model unmask its canvas, for text and images (Gradio).

    pip install -e ".[demo]"
    python recipes/demo.py --model runs/shakespeare_tiny --model runs/fmnist_mdm_tiny
    python recipes/demo.py --model runs/wordnet_lora                  # a LoRA adapter dir works as --model
    python recipes/demo.py --model BASE_DIR --adapter ADAPTER_DIR --port 7861

Serves on 127.0.0.1 (this machine only) unless --host says otherwise. One generation runs at a time; others
wait in a queue of --queue-size. Requests past the limits (--max-gen-length, --max-steps, --max-images)
get an error message. Sampler defaults come from each checkpoint's generation_config.json.
"""

from __future__ import annotations


import torch  # noqa: E402

import mdlm  # noqa: E402,F401
from mdlm.cli import ArgumentParser, UserError, run_cli, set_torch_threads  # noqa: E402
from mdlm.demo.limits import Limits  # noqa: E402
from mdlm.demo.models import load_demo_models  # noqa: E402


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", action="append", required=True,
                   help="a text or image checkpoint dir, or a LoRA adapter dir (repeat for one of each)")
    p.add_argument("--adapter", help="LoRA adapter dir to apply on top of the text --model")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine only)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, help="CPU threads for torch (on a busy CPU, 1 is often fastest for small models)")
    p.add_argument("--max-gen-length", type=int, default=Limits.max_gen_length)
    p.add_argument("--max-steps", type=int, default=Limits.max_steps)
    p.add_argument("--max-images", type=int, default=Limits.max_images)
    p.add_argument("--queue-size", type=int, default=Limits.queue_size)
    p.add_argument("--slow-motion", type=float, default=0.0, metavar="S",
                   help=f"default pause between shown steps, 0..{Limits.max_delay_s} s (to watch a fast model)")
    a = p.parse_args(argv)
    for name in ("max_gen_length", "max_steps", "max_images", "queue_size"):
        if getattr(a, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be ≥ 1, got {getattr(a, name)}")
    return a


@run_cli
def main() -> int:
    a = parse_args()
    set_torch_threads(a.threads)
    try:
        from mdlm.demo.web import build_app
    except ImportError as e:
        raise UserError(f"the web demo needs Gradio: pip install -e \".[demo]\" ({e})") from None
    models = load_demo_models(a.model, a.adapter, device=a.device)
    limits = Limits(max_gen_length=a.max_gen_length, max_steps=a.max_steps, max_images=a.max_images,
                    queue_size=a.queue_size)
    build_app(models, limits, slow_motion=a.slow_motion).launch(server_name=a.host, server_port=a.port, show_error=True)
    return 0


if __name__ == "__main__":
    main()
