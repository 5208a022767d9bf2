"""The headline figures of the 64×64 image run (#18) from its ablation results.json and bench_image.json, under
the keys of docs/benchmarks/results.json.

    python eval/images64_summary.py --ablation runs/images64/ablate/results.json --bench out/bench_image.json

Which row gives each key (so nothing is picked after the fact): image_sampling rows with schedule cosine and
strategy maskgit-confidence (the checkpoint's CFG), classifier-FID and -KID against the real test images (the KID
ratio is null unless the 64-step KID is > 2 std above 0); the floors = the unpaired reference points against the
test images (half B of the test split vs half A: real images, VQ reconstructions); captions rows at
CFG scale 1; bench rows with CFG ``constant`` (the checkpoint's default guidance) at batch 256. Prints one JSON object.
"""

from __future__ import annotations

import json
import sys

from mdlm.cli import ArgumentParser, UserError, run_cli

HEADLINE = {"schedule": "cosine", "strategy": "maskgit-confidence", "caption_cfg": 1.0, "bench_cfg": "constant"}


def _row(rows: list[dict], what: str, **match) -> dict | None:
    found = [r for r in rows if all(r.get(k) == v for k, v in match.items())]
    if len(found) > 1:
        raise UserError(f"{len(found)} {what} rows match {match}")
    return found[0] if found else None


def floors(res: dict) -> dict:
    """The unpaired reference points against the test images (half B vs half A): real-vs-real and the VQ's floor."""
    pts = res.get("reference_points", {}).get("test", {})
    out = {}
    for key, name in (("real_half_b", "real_vs_real"), ("vq_recon_half_b", "vq_recon")):
        if "kid" in pts.get(key, {}):
            out[f"image_kid_floor_{name}"] = pts[key]["kid"]
            out[f"image_kid_floor_{name}_std"] = pts[key]["kid_std"]
            out[f"image_fid_floor_{name}"] = pts[key]["fid"]
    return out


def headline(ablation: dict, bench: dict | None) -> dict:
    """The issue's keys (missing parts → the key is absent) + the 8-vs-64-step FID ratio (goal ≤ 1.2)."""
    out: dict = {}
    rows = ablation.get("image_sampling", {}).get("rows", [])
    for s in (8, 64):
        r = _row(rows, "image_sampling", schedule=HEADLINE["schedule"], strategy=HEADLINE["strategy"], steps=s)
        if r:
            out[f"image_fid_{s}steps"] = r["classifier_fid_by_reference"].get("test", r["classifier_fid"])
            out[f"image_class_acc_{s}steps"] = r["class_accuracy"]
            if "test" in r.get("kid_by_reference", {}):
                out[f"image_kid_{s}steps"] = r["kid_by_reference"]["test"]["kid"]
                out[f"image_kid_{s}steps_std"] = r["kid_by_reference"]["test"]["kid_std"]
    if "image_fid_8steps" in out and "image_fid_64steps" in out:
        out["image_fid_ratio_8_over_64"] = round(out["image_fid_8steps"] / out["image_fid_64steps"], 3)
    if "image_kid_8steps" in out and "image_kid_64steps" in out:  # a ratio needs a 64-step KID clearly above 0
        k8, k64 = out["image_kid_8steps"], out["image_kid_64steps"]
        out["image_kid_ratio_8_over_64"] = round(k8 / k64, 3) if k64 > 2 * out["image_kid_64steps_std"] else None
    out.update(floors(ablation.get("image_sampling", {})))
    caps = ablation.get("captions", {})
    r = _row(caps.get("rows", []), "captions", steps=8, cfg_scale=HEADLINE["caption_cfg"])
    if r:
        out["image_caption_match_8steps"] = r["category_match"]
        k = caps.get("k")
        if f"retrieval_at_{k}" in r:
            out[f"image_caption_retrieval_at_{k}_8steps"] = r[f"retrieval_at_{k}"]
    if bench:
        r = _row(bench.get("rows", []), "bench", steps=8, cfg=HEADLINE["bench_cfg"])
        if r:
            out[f"image_per_s_8steps_b{r['batch']}"] = r["images_per_s"]
            out["image_bench_device"] = bench.get("meta", {}).get("device")
    out["rows_used"] = HEADLINE
    return out


@run_cli
def main() -> int:
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ablation", required=True, help="eval/ablate.py OUT/results.json")
    p.add_argument("--bench", help="eval/bench_image.py --out JSON")
    a = p.parse_args()
    docs = []
    for path in (a.ablation, a.bench):
        if path is None:
            docs.append(None)
            continue
        try:
            with open(path, encoding="utf-8") as f:
                docs.append(json.load(f))
        except (OSError, json.JSONDecodeError) as e:
            raise UserError(f"cannot read {path}: {e}") from None
    json.dump(headline(*docs), sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    main()
