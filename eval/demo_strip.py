"""Animated strips of a canvas unmasking, for the README: a text canvas and an image canvas, step by step.

    python eval/demo_strip.py --model runs/shakespeare_tiny --model runs/digits_mdm --prompt "ROMEO:" \\
        --out-dir docs/images [--gen-length 64 --steps 32 --class-id 3 --num-images 8 --overwrite]

Writes unmasking_text.gif / unmasking_image.gif (every step) and unmasking_text.png / unmasking_image.png
(a few frames stacked, first = all [MASK]). Sampler defaults come from each checkpoint; the flags override them.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import mdlm  # noqa: E402,F401
from mdlm.cli import ArgumentParser, UserError, refuse_overwrite, run_cli  # noqa: E402


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", action="append", required=True, help="text and/or image checkpoint dir (repeat)")
    p.add_argument("--prompt", default="")
    p.add_argument("--gen-length", type=int)
    p.add_argument("--steps", type=int)
    p.add_argument("--temperature", type=float, help="text: token temperature (default: the checkpoint's)")
    p.add_argument("--strategy", help="text: unmasking strategy (default: the checkpoint's)")
    p.add_argument("--class-id", type=int, default=None, help="image class (default: unconditional)")
    p.add_argument("--num-images", type=int, default=8)
    p.add_argument("--cfg-scale", type=float)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--frames", type=int, default=6, help="frames in the PNG strips")
    p.add_argument("--out-dir", default="docs/images")
    p.add_argument("--overwrite", action="store_true")
    return p.parse_args(argv)


def text_frames(models, a) -> list:
    from mdlm.demo.render import canvas_pieces
    from mdlm.demo.stream import Done, prompt_length, sampler_config, stream_text
    from mdlm.demo.strip import text_frame, text_rows

    tok = models.text.tokenizer
    config, g = sampler_config(models.text.defaults, gen_length=a.gen_length, steps=a.steps,
                               temperature=a.temperature, strategy=a.strategy)
    P = prompt_length(tok, a.prompt)
    blank = [tok.mask_token_id] * g
    import torch

    shots = [(canvas_pieces(tok, torch.tensor(blank)), f"{a.prompt!r} · step 0/{config.steps}: all [MASK]")]
    for item in stream_text(models.text.model, tok, a.prompt, config, g, seed=a.seed):
        if not isinstance(item, Done):
            pieces = canvas_pieces(tok, item.canvas[0, P:], item.committed[0, P:])
            shots.append((pieces, f"{a.prompt!r} · step {item.step}/{item.max_steps} · NFE {item.nfe}"))
    rows = max(text_rows(p) for p, _ in shots)
    return [text_frame(p, caption, rows=rows) for p, caption in shots]


def image_frames(models, a) -> list:
    import torch

    from mdlm.demo.pictures import canvas_picture
    from mdlm.demo.stream import Done, sampler_config, stream_images
    from mdlm.demo.strip import picture_frame

    b = models.image
    config, _ = sampler_config(b.loaded.defaults, steps=a.steps, cfg_scale=a.cfg_scale)
    name = "unconditional" if a.class_id is None else b.info.class_names[a.class_id]
    h, w = b.info.latent_shape
    blank = torch.full((a.num_images, 1 + h * w), b.info.layout.mask_id)
    frames = [picture_frame(canvas_picture(b.vq, b.info.layout, blank), f"{name} · step 0: all [MASK]")]
    for item in stream_images(b.loaded.model, b.info, b.vq, a.class_id, a.num_images, config, seed=a.seed):
        if not isinstance(item, Done):
            frames.append(picture_frame(canvas_picture(b.vq, b.info.layout, item.canvas),
                                        f"{name} · step {item.step}/{item.max_steps}"))
    return frames


@run_cli
def main() -> int:
    a = parse_args()
    from mdlm.demo.models import load_demo_models
    from mdlm.demo.strip import save_gif, save_strip
    from mdlm.pipelines.image import frame_indices

    models = load_demo_models(a.model)
    if models.image is not None and a.class_id is not None and not 0 <= a.class_id < len(models.image.info.class_names):
        raise UserError(f"--class-id {a.class_id} is not a class of the image model (0..{len(models.image.info.class_names) - 1})")
    jobs = [(k, fn) for k, m, fn in (("text", models.text, text_frames), ("image", models.image, image_frames)) if m]
    outs = {k: [os.path.join(a.out_dir, f"unmasking_{k}.{e}") for e in ("gif", "png")] for k, _ in jobs}
    for p in [q for pair in outs.values() for q in pair]:
        refuse_overwrite(p, a.overwrite)
    os.makedirs(a.out_dir, exist_ok=True)
    for kind, make in jobs:
        frames = make(models, a)
        save_gif(frames, outs[kind][0])
        save_strip(frames, outs[kind][1], frame_indices(len(frames), a.frames), vertical=kind == "text")
        print(f"{kind}: {len(frames)} frames → {outs[kind][0]}, {outs[kind][1]}")
    return 0


if __name__ == "__main__":
    main()
