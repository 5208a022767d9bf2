"""Does the caption steer the image? A CPU check on tests/rgb_fixtures.py's captioned shapes ("red circle", …):
sample a text-image checkpoint for each colour × shape prompt and measure the share of images whose dominant colour
(the strongest channel of the mean over non-background pixels) is the prompt's colour — chance is 1/3 — with and
without classifier-free guidance, next to the unconditional model's images scored against the same colours and
(with ``--data``) the same score of the checkpoint's VQ reconstructions of the real images: the tokenizer's ceiling.

    python eval/t2i_shapes_check.py --model runs/t2i_check/mdm --data runs/t2i_check/shapes --num-samples 16 --steps 8
"""

from __future__ import annotations

import json
import sys

import torch

import mdlm  # noqa: F401
from mdlm.cli import ArgumentParser, positive_int, run_cli

COLOURS = ("red", "green", "blue")  # channel order of RGB
SHAPES = ("circle", "square")


def dominant_colour(images: torch.Tensor, background: float = 0.8) -> torch.Tensor:
    """(N, 3, H, W) in [-1, 1] → (N,) index into COLOURS of the strongest channel of the mean non-background pixel
    (background: all channels ≥ ``background``, i.e. near white)."""
    fg = (images < background).any(dim=1, keepdim=True).float()  # (N, 1, H, W)
    mean = (images * fg).sum(dim=(2, 3)) / fg.sum(dim=(2, 3)).clamp_min(1.0)  # (N, 3)
    return mean.argmax(dim=1)


def colour_match(model_dir: str, prompts: list[str], num_samples: int, steps: int, cfg: float, seed: int,
                 conditioned: bool = True) -> float:
    """Share of images whose dominant colour is their prompt's (prompts name one of COLOURS first). With
    ``conditioned=False`` the images are drawn with an empty prompt (the unconditional model) and scored against the
    same prompts' colours: the measured chance level."""
    from mdlm.pipelines import load_for_generation
    from mdlm.pipelines.image import (
        generate_conditioned,
        image_model_info,
        load_image_vq,
    )
    from mdlm.pipelines.text import sampler_config_from
    from mdlm.pipelines.text_image import condition_rows, load_caption_tokenizer

    lo = load_for_generation(model_dir)
    info = image_model_info(lo.model.config)
    shown = prompts if conditioned else [""] * len(prompts)
    rows = condition_rows(info, load_caption_tokenizer(model_dir, info), shown, None, num_samples)
    config, _ = sampler_config_from(lo.defaults, {"steps": steps, "cfg_scale": cfg})
    out = generate_conditioned(lo.model, info.layout, load_image_vq(model_dir, info), rows.labels, rows.captions,
                               config, torch.Generator().manual_seed(seed))
    want = torch.tensor([COLOURS.index(p.split()[0]) for p in prompts]).repeat_interleave(num_samples)  # (B,)
    return float((dominant_colour(out.images) == want).float().mean())


def reconstruction_match(model_dir: str, data_dir: str) -> float:
    """Dominant-colour match of the checkpoint VQ's reconstructions of the folder's images against their captions."""
    from transformers import AutoConfig

    from mdlm.data.images import dataset_to_tensors, load_image_folder
    from mdlm.pipelines.image import image_model_info, load_image_vq

    ds = load_image_folder(data_dir, image_size=64, channels=3)["train"]
    x, _ = dataset_to_tensors(ds)  # (N, 3, 64, 64)
    info = image_model_info(AutoConfig.from_pretrained(model_dir))
    vq = load_image_vq(model_dir, info)
    with torch.no_grad():
        recon = vq.decode(vq.encode(x)).float()
    want = torch.tensor([COLOURS.index(c.split()[0]) for c in ds["caption"]])
    return float((dominant_colour(recon) == want).float().mean())


@run_cli
def main() -> int:
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="a text-image checkpoint trained on the shapes folder")
    p.add_argument("--num-samples", type=positive_int, default=16, help="images per prompt")
    p.add_argument("--steps", type=positive_int, default=8)
    p.add_argument("--cfg", type=float, nargs="+", default=[0.0, 2.0], help="guidance scales to compare")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", help="the shapes folder: also score the VQ reconstructions of its images")
    a = p.parse_args()
    prompts = [f"{c} {s}" for c in COLOURS for s in SHAPES]
    res = {"model": a.model, "prompts": prompts, "num_samples": a.num_samples, "steps": a.steps, "chance": 1 / 3,
           "colour_match": {f"cfg {s:g}": round(colour_match(a.model, prompts, a.num_samples, a.steps, s, a.seed), 4)
                            for s in a.cfg},
           "unconditional_vs_same_colours": round(colour_match(a.model, prompts, a.num_samples, a.steps, 0.0, a.seed,
                                                               conditioned=False), 4)}
    if a.data:
        res["vq_reconstructions"] = round(reconstruction_match(a.model, a.data), 4)
    json.dump(res, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    main()
