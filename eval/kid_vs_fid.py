"""FID vs KID on one classifier's features: real-vs-real at several sizes, paired vs unpaired halves, first-N vs
random train images, class-balanced vs the data's mix, blurred test images (the table of docs/images/evaluation.md).

    python eval/kid_vs_fid.py --classifier runs/emoji_clf_cpu --data .data/emoji64.npz

Prints one JSON line per comparison (set, reference, sizes, classifier-FID, classifier-KID mean and std).
"""

from __future__ import annotations

import json

import torch
import torch.nn.functional as F

from mdlm.cli import ArgumentParser, run_cli


def blur(x: torch.Tensor, side: int) -> torch.Tensor:
    """(N, C, 64, 64) down to side×side (antialiased) and back: a stand-in for a lossy tokenizer."""
    size = x.shape[-1]
    return F.interpolate(F.interpolate(x, size=side, mode="bilinear", antialias=True), size=size, mode="bilinear")


@run_cli
def main() -> int:
    from mdlm.evaluation.classifier import load_classifier
    from mdlm.evaluation.fid import classifier_features, feature_fid
    from mdlm.evaluation.image_sets import load_image_set
    from mdlm.evaluation.kid import kid

    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--classifier", required=True)
    p.add_argument("--data", required=True, help="a data set name or exported .npz with train/test splits")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    clf = load_classifier(a.classifier, "cpu")
    cfg = clf.config
    sets = {s: load_image_set(f"{a.data}:{s}", channels=cfg.in_channels, image_size=cfg.image_size)
            for s in ("test-a", "test-b", "train")}
    feat = {s: classifier_features(clf, v.images, 256) for s, v in sets.items()}
    fa, train, y = feat["test-a"], feat["train"], sets["train"].labels

    def row(name: str, f, ref, ref_name: str) -> None:
        k = kid(f, ref, seed=a.seed)
        print(json.dumps({"set": name, "vs": ref_name, "n": len(f), "n_ref": len(ref), "fid": round(feature_fid(f, ref), 2),
                          "kid": round(k.mean, 4), "kid_std": round(k.std, 4), "kid_subset": k.subset_size}), flush=True)

    g = torch.Generator().manual_seed(a.seed)
    perm = torch.randperm(len(train), generator=g)
    h = len(fa)
    row("test-b (unseen real)", feat["test-b"], fa, "test-a")
    row("test-a itself (paired)", fa, fa, "test-a")
    row(f"first {h} train images (file order, seen)", train[:h], fa, "test-a")
    row("all train images (seen)", train, fa, "test-a")
    for side in (32, 16, 8):
        row(f"test-b via {side}x{side}", classifier_features(clf, blur(sets["test-b"].images, side), 256), fa, "test-a")
    n_cls, npc = cfg.num_classes, 112
    bal = torch.cat([torch.nonzero(y == c)[:, 0][torch.randint(0, int((y == c).sum()), (npc,), generator=g)]
                     for c in range(n_cls) if (y == c).any()])
    row(f"train, {npc} per class (balanced, seen)", train[bal], fa, "test-a")
    row(f"train, {len(bal)} at random (the data's mix, seen)", train[perm[: len(bal)]], fa, "test-a")
    for n in (50, 171, 500, 1500):
        if 2 * n <= len(train):
            row(f"{n} random train images", train[perm[:n]], train[perm[n : 2 * n]], f"{n} other train images")
    return 0


if __name__ == "__main__":
    main()
