"""classifier-FID, classifier-KID, class accuracy and caption retrieval of generated images, on the features of a
classifier trained here (no Inception weights exist offline).

    # 64×64 RGB: samples (images + labels and/or captions) against emoji's test split
    python eval/fid.py --classifier runs/emoji_classifier --fake samples.npz --real emoji:test
    # unpaired floors: real half B vs real half A of the test split, and half B through the VQ (encode → decode)
    python eval/fid.py --classifier runs/emoji_classifier --fake emoji:test-b --real emoji:test-a
    python eval/fid.py --classifier runs/emoji_classifier --fake emoji:test-b --vq runs/images64/vq --real emoji:test-a
    # Fashion-MNIST (the older form: --images = --fake, --reference = --real)
    python eval/fid.py --classifier runs/fmnist_classifier --images samples.npz [--reference test]
    # also a standard Inception FID, from a weights file you have (needs torchvision [+ pytorch-fid]):
    python eval/fid.py --classifier CLF --images samples.npz --inception pt_inception-2015-12-05.pth

Caption scores need ``captions`` in a samples ``.npz`` (a data set's own captions are not prompts).
Image sets (``--fake`` / ``--real`` / ``--captions-from``): ``NAME:train|test|all|test-a|test-b`` of a data set (``emoji``,
``fashion-mnist``, an exported ``.npz``, a folder), ``train`` / ``test`` of ``--dataset``, or a ``.npz`` of
samples (``images`` uint8 (N, C, H, W) or (N, H, W) or float [-1, 1]; ``labels`` (N,) = the requested class;
``captions`` (N,) = the prompt; write it with mdlm.data.images.save_samples_npz).

Prints ONE JSON line, e.g.
    {"metric": "classifier-FID (emoji CNN features)", "classifier_fid": 3.21, "classifier_kid": 0.012,
     "classifier_kid_std": 0.004, "kid_subsets": 100, "kid_subset_size": 171, "class_accuracy": 0.87,
     "class_accuracy_balanced": 0.74, "caption_category_accuracy": 0.8, "caption_retrieval_accuracy": 0.6, "caption_retrieval_k": 10, ...}
``classifier_fid`` is the Fréchet distance of the classifier's penultimate features (mdlm/evaluation/fid.py),
NOT the Inception FID of papers (a Fashion-MNIST classifier also writes it as ``classifier_fid_fmnist``).
``classifier_kid``: KID (Bińkowski et al. 2018; mdlm/evaluation/kid.py) on the same features, mean and std over
``--kid-subsets`` seeded subsets; unbiased, so two sets from one distribution score ≈ 0 at any size (FID does not).
The train split was seen by the classifier: a "train vs test" FID/KID measures its overfitting, not a floor.
``class_accuracy``: the share of fake images classified as their label, ``class_accuracy_balanced`` the mean
per-class recall (both null without labels; read the balanced one when the classes are imbalanced). With captions in
``--fake`` and a captioned ``--captions-from`` set (default ``--real``): ``caption_category_accuracy`` (predicted
class = the class of the prompt's real image) and ``caption_retrieval_accuracy`` (nearer to the prompt's real
image than to K-1 random others; chance 1/K) — see mdlm/evaluation/caption_retrieval.py.
"""

from __future__ import annotations

import json
import os

import torch

from mdlm.cli import ArgumentParser, UserError, positive_int, run_cli
from mdlm.evaluation.caption_retrieval import (
    caption_index,
    caption_retrieval_accuracy,
    prompt_category_accuracy,
)
from mdlm.evaluation.classifier import class_accuracies, load_classifier, predict
from mdlm.evaluation.fid import classifier_features, extract_features, feature_fid
from mdlm.evaluation.image_scoring import METRIC_NAME, metric_name, reconstruct
from mdlm.evaluation.image_sets import ImageSet, load_image_set
from mdlm.evaluation.kid import kid


def parse_args(argv: list[str] | None = None):
    p = ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--classifier", help="classifier dir (recipes/train_classifier.py output)")
    p.add_argument("--fake", "--images", dest="fake", required=True, help="the images to score (a .npz or NAME:SPLIT)")
    p.add_argument("--real", "--reference", dest="real", default="test", help="reference images (NAME:SPLIT, train, "
                   "test, or a .npz)")
    p.add_argument("--dataset", default="fashion-mnist", help="data set of --real train / test")
    p.add_argument("--captions-from", default=None, help="captioned real set for caption retrieval (default: --real)")
    p.add_argument("--retrieval-k", type=positive_int, default=10, help="candidates per image in caption retrieval")
    p.add_argument("--max-reference", "--max_reference", type=positive_int, default=None,
                   help="use N reference images drawn at random (seeded by --seed; a set stored in class order "
                        "would otherwise give a few classes only)")
    p.add_argument("--vq", default=None, help="pass --fake through this VQ tokenizer dir (encode → decode) first")
    p.add_argument("--kid-subsets", type=positive_int, default=100, help="KID: number of random subsets")
    p.add_argument("--kid-subset-size", type=positive_int, default=None,
                   help="KID: images per subset (default min(1000, half the smaller set))")
    p.add_argument("--inception", default=None, help="Inception-v3 weights file (torchvision or pytorch-fid)")
    p.add_argument("--batch-size", "--batch_size", type=positive_int, default=500)
    p.add_argument("--seed", type=int, default=0, help="draws the retrieval distractors and the --max-reference images")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args(argv)
    if not args.classifier and not args.inception:
        p.error("give --classifier DIR (and/or --inception PATH)")
    if args.retrieval_k < 2:
        p.error("--retrieval-k must be ≥ 2")
    return args


def caption_scores(clf, fake: ImageSet, real: ImageSet, k: int, batch_size: int, seed: int) -> dict:
    """Category match and caption retrieval of ``fake`` (with captions) against a captioned ``real`` set."""
    if real.captions is None:
        raise UserError(f"{real.description} has no captions: pass --captions-from NAME:SPLIT of a captioned data set")
    target = caption_index(real.captions, fake.prompts)  # (N,)
    out = {"caption_retrieval_k": k, "caption_reference": real.description}
    if real.labels is not None:
        out["caption_category_accuracy"] = round(prompt_category_accuracy(predict(clf, fake.images, batch_size),
                                                                          real.labels, target), 4)
    gen = classifier_features(clf, fake.images, batch_size)
    ref = classifier_features(clf, real.images, batch_size)
    out["caption_retrieval_accuracy"] = round(caption_retrieval_accuracy(gen, ref, target, k, seed), 4)
    out["caption_retrieval_chance"] = round(1 / k, 4)
    return out


def classifier_scores(args, fake: ImageSet, real: ImageSet) -> dict:
    clf = load_classifier(args.classifier, args.device)
    f_fake = classifier_features(clf, fake.images, args.batch_size)
    f_real = classifier_features(clf, real.images, args.batch_size)
    k = kid(f_fake, f_real, num_subsets=args.kid_subsets, subset_size=args.kid_subset_size, seed=args.seed)
    out = {"metric": metric_name(clf), "classifier_fid": round(feature_fid(f_fake, f_real), 4),
           "classifier_kid": k.as_dict()["kid"], "classifier_kid_std": k.as_dict()["kid_std"],
           "kid_subsets": k.num_subsets, "kid_subset_size": k.subset_size}
    if out["metric"] == METRIC_NAME:
        out["classifier_fid_fmnist"] = out["classifier_fid"]  # the older key
    accs = class_accuracies(clf, fake.images, fake.labels, args.batch_size) if fake.labels is not None else None
    out["class_accuracy"] = round(accs[0], 4) if accs else None
    out["class_accuracy_balanced"] = round(accs[1], 4) if accs else None
    if fake.prompts is not None:
        cap_real = (load_image_set(args.captions_from, args.dataset, clf.config.in_channels, clf.config.image_size)
                    if args.captions_from else real)
        out.update(caption_scores(clf, fake, cap_real, args.retrieval_k, args.batch_size, args.seed))
    return out


def inception_scores(args, fake: ImageSet, real: ImageSet) -> dict:
    from mdlm.evaluation.inception import load_inception_features

    try:
        fn, kind = load_inception_features(args.inception, args.device)
    except ImportError as e:  # torchvision / pytorch-fid missing: one line naming the package
        raise UserError(str(e)) from None
    bs = min(args.batch_size, 100)
    f_fake, f_real = extract_features(fn, fake.images, bs), extract_features(fn, real.images, bs)
    k = kid(f_fake, f_real, num_subsets=args.kid_subsets, subset_size=args.kid_subset_size, seed=args.seed)
    return {"fid_inception_v3": round(feature_fid(f_fake, f_real), 4), "kid_inception_v3": k.as_dict()["kid"],
            "kid_inception_v3_std": k.as_dict()["kid_std"], "inception_weights": kind}


def through_vq(images: ImageSet, vq_dir: str, device: str, batch_size: int) -> ImageSet:
    """``images`` encoded and decoded by the VQ tokenizer at ``vq_dir`` (its floor: what a perfect sampler of its
    codes would score); labels and captions kept."""
    from mdlm.tokenizers.image import load_image_tokenizer

    if not os.path.isdir(vq_dir):
        raise UserError(f"--vq {vq_dir!r} is not a directory")
    vq = load_image_tokenizer(vq_dir, device=device)
    x = reconstruct(vq, images.images, batch_size)
    return ImageSet(x, images.labels, images.captions, f"VQ reconstructions of {images.description}", images.generated)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    shape: tuple = (None, None)  # (channels, image size) the classifier takes
    if args.classifier:
        if not os.path.isdir(args.classifier):
            raise UserError(f"--classifier {args.classifier!r} is not a directory (train one with "
                            "recipes/train_classifier.py)")
        cfg = load_classifier(args.classifier).config
        shape = (cfg.in_channels, cfg.image_size)
    fake = load_image_set(args.fake, args.dataset, *shape)
    if args.vq:
        fake = through_vq(fake, args.vq, args.device, args.batch_size)
    real = load_image_set(args.real, args.dataset, *shape).sample(args.max_reference, args.seed)
    if tuple(fake.images.shape[1:]) != tuple(real.images.shape[1:]):
        raise ValueError(f"--fake images are {tuple(fake.images.shape[1:])}, --real images {tuple(real.images.shape[1:])}")
    out: dict = {"metric": "FID (Inception-v3 pool3)"}
    if args.classifier:
        out.update(classifier_scores(args, fake, real))
    if args.inception:
        out.update(inception_scores(args, fake, real))
    out.update({"n_images": int(fake.images.shape[0]), "n_reference": int(real.images.shape[0]),
                "fake": fake.description, "reference": args.real})
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    run_cli(main)()
