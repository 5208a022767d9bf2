"""Caption → image on a text-image checkpoint: one image per held-out caption, at several step counts and guidance
scales; does the picture match its prompt?

* **category match**: the share of images that the data set's classifier puts in the category of the real image
  that carries the caption (for emoji: the caption is the emoji's name, the category one of 9 groups);
* **retrieval among K** (:func:`mdlm.evaluation.caption_retrieval.caption_retrieval_accuracy`, when installed):
  the image is nearer (cosine of classifier features) to its caption's real image than to K−1 random others.

Reference points beside them: the same two scores for the VQ reconstructions of the captions' real images (a
perfect generator of the tokenizer's images), and chance (1 / number of categories, 1 / K). The rows are
conditioned on the caption only (the class slot [MASK]), with the checkpoint's other sampler defaults.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

from ...data.images import dataset_to_tensors
from ..classifier import predict
from ..image_scoring import reconstruct
from .grid import Images


def _retrieval():
    try:
        from ..caption_retrieval import caption_retrieval_accuracy
    except ImportError:  # the metric module arrives with the 64×64 evaluation work
        return None
    return caption_retrieval_accuracy


def caption_references(scorer, num_captions: int) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """The first ``num_captions`` distinct captions of the test split with their real images (N, C, H, W) and
    categories (N,)."""
    test = scorer.data["test"]
    if "caption" not in test.column_names:
        raise ValueError(f"the captions part needs a captioned data set; {scorer.dataset} has no 'caption' column")
    seen: dict[str, int] = {}
    for i, c in enumerate(test["caption"]):
        if c and c not in seen:
            seen[c] = i
        if len(seen) == num_captions:
            break
    idx = list(seen.values())
    x, y = dataset_to_tensors(test.select(idx))
    return list(seen), x, y


def _scores(scorer, images: torch.Tensor, labels: torch.Tensor, ref_feats: np.ndarray, k: int, seed: int) -> dict:
    """Category match of (N, C, H, W) images against labels (N,), and retrieval among k against ref_feats (N, d)."""
    out = {"category_match": round(float((predict(scorer.clf, images, scorer.batch_size) == labels).double().mean()), 4)}
    retrieval = _retrieval()
    if retrieval is not None and len(labels) >= k:
        target = np.arange(len(labels))
        out[f"retrieval_at_{k}"] = round(retrieval(scorer.features(images), ref_feats, target, k=k, seed=seed), 4)
    return out


def caption_ablation(ckpt, scorer, im: Images, *, steps: list[int], scales: list[float], interval: list[float],
                     num_captions: int, k: int, seed: int, log: Callable[[str], None] = print) -> dict:
    """One image per caption for every (steps, CFG scale); category match and retrieval of each row."""
    from ...pipelines.image import generate_conditioned
    from ...pipelines.text import sampler_config_from
    from ...pipelines.text_image import condition_rows, load_caption_tokenizer

    tok = load_caption_tokenizer(ckpt.path, ckpt.info)
    prompts, real, labels = caption_references(scorer, num_captions)
    ref_feats = scorer.features(real)  # (N, d)
    recon = _scores(scorer, reconstruct(ckpt.vq, real, scorer.batch_size), labels, ref_feats, k, seed)
    cond = condition_rows(ckpt.info, tok, prompts, None, num_samples=1)
    rows = []
    for s in steps:
        for scale in scales:
            config, _ = sampler_config_from(ckpt.defaults, {**im.sampler, "steps": s, "cfg_scale": scale,
                                                            "cfg_interval": tuple(interval)})
            g = torch.Generator(device=ckpt.device).manual_seed(seed)
            t0 = time.perf_counter()
            out = generate_conditioned(ckpt.model, ckpt.info.layout, ckpt.vq, cond.labels, cond.captions, config, g,
                                       batch_size=im.batch_size)
            r = {"steps": s, "cfg_scale": scale, "nfe": out.nfe, "n_images": len(prompts),
                 "sample_wall_s": round(time.perf_counter() - t0, 2),
                 **_scores(scorer, out.images, labels, ref_feats, k, seed)}
            rows.append(r)
            log(f"  steps {s:>3} CFG {scale:g}: category match {r['category_match']:.3f}"
                + (f" | retrieval@{k} {r[f'retrieval_at_{k}']:.3f}" if f"retrieval_at_{k}" in r else "")
                + f" | NFE {out.nfe}")
    return {"model": ckpt.path, "num_captions": len(prompts), "k": k, "interval": list(interval), "seed": seed,
            "chance": {"category_match": round(1 / ckpt.info.layout.num_classes, 4), f"retrieval_at_{k}": round(1 / k, 4)},
            "vq_reconstructions": recon, "examples": prompts[:8], "rows": rows}


def caption_markdown(res: dict) -> str:
    k = res["k"]
    key = f"retrieval_at_{k}"
    has_r = any(key in r for r in res["rows"])
    examples = ", ".join(f"“{p}”" for p in res["examples"][:4])
    retrieval = (f"; retrieval@{k} = the image is nearer to its caption's real image than to {k - 1} random others "
                 "(classifier features, cosine)") if has_r else "; retrieval: mdlm.evaluation.caption_retrieval missing"
    intro = (f"One image per held-out caption ({res['num_captions']} captions, e.g. {examples}), the class slot [MASK], "
             f"seed {res['seed']}; guidance ℓ = c + s·(c − u) while τ ∈ ({res['interval'][0]:g}, "
             f"{res['interval'][1]:g}]. Category match = the classifier puts the image in the category of the caption's "
             f"real image{retrieval}.")
    refs = (f"Reference points: VQ reconstructions of the captions' real images {res['vq_reconstructions']}; "
            f"chance {res['chance']}.")
    lines = [f"# Caption → image: {res['model']}", "", intro, "", refs, "",
             "| steps | CFG s | NFE/image | category match |" + (f" retrieval@{k} |" if has_r else "") + " sample s |",
             "|---:|---:|---:|---:|" + ("---:|" if has_r else "") + "---:|"]
    for r in res["rows"]:
        lines.append(f"| {r['steps']} | {r['cfg_scale']:g} | {r['nfe']} | {r['category_match']:.3f} |"
                     + (f" {r.get(key, float('nan')):.3f} |" if has_r else "") + f" {r['sample_wall_s']:.1f} |")
    return "\n".join(lines) + "\n"


def caption_plot(res: dict, path: str) -> None:
    from .image_common import image_figure

    plt, fig, (ax,) = image_figure(1)
    for scale in sorted({r["cfg_scale"] for r in res["rows"]}):
        rs = [r for r in res["rows"] if r["cfg_scale"] == scale]
        ax.plot([r["steps"] for r in rs], [r["category_match"] for r in rs], marker="o", label=f"CFG {scale:g}")
    ax.axhline(res["vq_reconstructions"]["category_match"], color="k", lw=0.8, ls="--", label="VQ reconstructions")
    ax.axhline(res["chance"]["category_match"], color="grey", lw=0.8, ls=":", label="chance")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("sampler steps")
    ax.set_ylabel("category match")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
