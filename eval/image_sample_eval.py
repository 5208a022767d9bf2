"""Sample from a class-conditional image MDM and score the samples: classifier-FID (features of a classifier
trained on the same data set: Fashion-MNIST, or the 64×64 emoji) and class accuracy, for several step counts.

    python eval/image_sample_eval.py --model runs/fmnist_mdm_tiny --classifier .artifacts/fmnist_classifier \\
        --steps 8 16 32 --num-per-class 100 --json runs/fmnist_mdm_tiny/sample_eval.json
    # sampler overrides (defaults: the checkpoint's generation_config.json), e.g. no guidance:
    python eval/image_sample_eval.py --model DIR --classifier CLF --steps 16 --cfg-scale 0 --temperature 1
    # compare with the VQ reconstructions of the test images (no tokenizer floor), and also with the test images:
    python eval/image_sample_eval.py --model DIR --classifier CLF --steps 8 16 --reference recon test
    # 64×64 emoji (classifier: recipes/configs/emoji_classifier_gpu.yaml)
    python eval/image_sample_eval.py --model DIR --classifier runs/emoji_classifier --dataset emoji --steps 8 64

For each step count, ``num_per_class`` images of every class are generated with the one sampler and
scored by :mod:`mdlm.evaluation.image_scoring` (classifier-FID of the project's classifier features — NOT
the Inception FID of papers — and class accuracy). ``--reference`` (one or more; the first
is the headline ``classifier_fid``): ``test`` (default) / ``train`` real images, or ``recon`` = the VQ
reconstructions of the test images (no tokenizer floor; see the library module for the reference points).

Prints a table and writes ``--json`` (refused if it exists, unless ``--overwrite``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import torch

import mdlm  # noqa: F401
from mdlm.cli import ArgumentParser, positive_int, refuse_overwrite, run_cli
from mdlm.evaluation.files import write_json
from mdlm.evaluation.image_scoring import (
    REFERENCES,
    build_scorer,
    check_dirs,
    load_image_checkpoint,
    reference_summary,
    sample_and_score,
)
from mdlm.sampling import add_generation_arguments, given_settings


def parse_args(argv: list[str] | None = None):
    p = ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="image MDM checkpoint dir (recipes/train_image.py output)")
    p.add_argument("--classifier", required=True, help="classifier dir (recipes/train_classifier.py output)")
    p.add_argument("--steps", type=positive_int, nargs="+", default=[8, 16, 32])
    p.add_argument("--num-per-class", type=positive_int, default=100)
    p.add_argument("--dataset", default="fashion-mnist", help="reference data set (fashion-mnist, digits, emoji, "
                   "openclipart, tuxpaint, an exported .npz, a folder)")
    p.add_argument("--data-dir", default=None, help="Fashion-MNIST IDX dir (default: $MDLM_FASHION_MNIST_DIR or Debian's)")
    p.add_argument("--reference", nargs="+", default=["test"], choices=REFERENCES,
                   help="reference image set(s); the first is the headline classifier_fid (recon = VQ reconstructions "
                        "of the test images)")
    p.add_argument("--max-reference", type=positive_int, default=None, help="use N images of each reference split (a seeded random draw)")
    p.add_argument("--batch-size", type=positive_int, default=500, help="rows per sampler call")
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--save-npz", default=None, help="directory: also write samples_steps{S}.npz for eval/fid.py")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json / npz file")
    g = p.add_argument_group("sampler overrides (default: the checkpoint's generation_config.json)")
    sampler_flags = add_generation_arguments(g, exclude=("steps",))
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    g.add_argument("--dtype", choices=["float32", "bfloat16"], default=None)
    a = p.parse_args(argv)
    a.sampler_flags = sampler_flags
    if a.num_per_class < 2:
        p.error("--num-per-class must be ≥ 2")
    if a.max_reference is not None and a.max_reference < 2:
        p.error("--max-reference must be ≥ 2")
    a.reference = list(dict.fromkeys(a.reference))  # unique, first one kept first
    refuse_overwrite(a.json, a.overwrite)
    return a


def sampler_overrides(a) -> dict[str, Any]:
    """The sampler flags of ``a`` that were given (None = the checkpoint's default)."""
    return given_settings(a, a.sampler_flags)


def fmt_row(cols: list, widths: list[int]) -> str:
    return " | ".join(str(c).rjust(w) for c, w in zip(cols, widths))


def print_table(result: dict[str, Any]) -> None:
    rows, refs = result["results"], result["references"]
    fid_cols = ["classifier-FID"] if len(refs) == 1 else [f"FID vs {r}" for r in refs]
    widths = [6, 5, *[max(14, len(c)) for c in fid_cols], 10, 9, 9]
    print(f"{result['metric']}; {rows[0]['n_images']} samples per row vs {result['reference']}")
    print(fmt_row(["steps", "NFE", *fid_cols, "class acc", "wall s", "img/s"], widths))
    print("-+-".join("-" * w for w in widths))
    for r in rows:
        fids = [f"{r['classifier_fid_by_reference'][ref]:.3f}" for ref in refs]
        print(fmt_row([r["steps"], r["nfe"], *fids, f"{r['class_accuracy']:.3f}", f"{r['sample_wall_s']:.1f}",
                       f"{r['images_per_s']:.0f}"], widths))
    for r in rows:
        print(f"steps {r['steps']}: classifier-KID " + ", ".join(
            f"vs {ref} {k['kid']:.4g} ± {k['kid_std']:.2g}" for ref, k in r["kid_by_reference"].items()))
    for ref, pts in result["reference_points"].items():  # unpaired: half B of the test split vs half A
        print(f"reference points vs {ref} (half A; {result['n_probe']} images each): " + ", ".join(
            f"{name} FID {p['fid']:.3f} KID {p['kid']:.4g} ± {p['kid_std']:.2g}" for name, p in pts.items()))


def main(argv: list[str] | None = None) -> dict:
    a = parse_args(argv)
    check_dirs(a.model, a.classifier)
    ckpt = load_image_checkpoint(a.model, a.device, getattr(torch, a.dtype) if a.dtype else None)
    t0 = time.perf_counter()
    scorer = build_scorer(a.classifier, ckpt.device, dataset=a.dataset, data_dir=a.data_dir,
                          max_reference=a.max_reference, batch_size=a.batch_size,
                          num_classes=ckpt.info.layout.num_classes)
    refs = reference_summary(scorer, ckpt, a.reference)
    ref_s = time.perf_counter() - t0
    rows = []
    for steps in a.steps:
        npz = None
        if a.save_npz:
            os.makedirs(a.save_npz, exist_ok=True)
            npz = os.path.join(a.save_npz, f"samples_steps{steps}.npz")
            refuse_overwrite(npz, a.overwrite)
        r = sample_and_score(ckpt, scorer, steps=steps, overrides=sampler_overrides(a), num_per_class=a.num_per_class,
                             seed=a.seed, batch_size=a.batch_size, references=a.reference, npz_path=npz)
        rows.append(r)
        print(f"steps {steps}: classifier-FID {r['classifier_fid']:.3f} (vs {a.reference[0]}), class acc "
              f"{r['class_accuracy']:.3f}, {r['sample_wall_s']:.1f}s", file=sys.stderr, flush=True)
    primary = refs["reference_points"].get(a.reference[0], {})  # {}: too few test images for the halves
    result = {
        "metric": scorer.metric, "model": a.model, "classifier": a.classifier,
        "reference": scorer.describe(a.reference[0]), **refs, "num_per_class": a.num_per_class,
        **{f"{name}_{m}": primary.get(key, {}).get(m) for name, key in (("vq_reconstruction", "vq_recon_half_b"),
                                                                         ("real_data", "real_half_b"))
           for m in ("fid", "kid")},
        "reference_wall_s": round(ref_s, 1),
        "device": torch.cuda.get_device_name(ckpt.device) if ckpt.device.type == "cuda" else "cpu",
        "torch": torch.__version__, "results": rows,
    }
    print_table(result)
    if a.json:
        write_json(a.json, result)
        print(f"wrote {a.json}")
    return result


if __name__ == "__main__":
    run_cli(main)()
