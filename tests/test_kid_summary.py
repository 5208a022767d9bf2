"""eval/images64_summary.py: the KID headline keys beside the FID ones, from a results.json of the new form, and an
older results.json (FID only) still summarised."""

from __future__ import annotations

from test_image_sample_eval import load_eval_script


def row(steps: int, fid: float, kid: float | None, std: float = 0.01) -> dict:
    r = {"schedule": "cosine", "strategy": "maskgit-confidence", "steps": steps, "classifier_fid": fid,
         "classifier_fid_by_reference": {"test": fid}, "class_accuracy": 0.5}
    if kid is not None:
        r["kid_by_reference"] = {"test": {"kid": kid, "kid_std": std}}
    return r


def point(fid: float, kid: float) -> dict:
    return {"fid": fid, "kid": kid, "kid_std": 0.02}


def test_kid_keys_ratio_and_floors():
    summary = load_eval_script("images64_summary")
    pts = {"test": {"real_half_b": point(900.0, -0.01), "vq_recon_half_b": point(950.0, 0.3)}}
    out = summary.headline({"image_sampling": {"rows": [row(8, 1800.0, 1.2), row(64, 1500.0, 0.8)],
                                               "reference_points": pts}}, None)
    assert out["image_fid_8steps"] == 1800.0 and out["image_fid_ratio_8_over_64"] == 1.2  # FID keys unchanged
    assert out["image_kid_8steps"] == 1.2 and out["image_kid_64steps"] == 0.8 and out["image_kid_ratio_8_over_64"] == 1.5
    assert out["image_kid_floor_real_vs_real"] == -0.01 and out["image_kid_floor_vq_recon"] == 0.3
    assert out["image_fid_floor_vq_recon"] == 950.0
    # a 64-step KID within noise of 0: no ratio (it would be noise over noise)
    near0 = summary.headline({"image_sampling": {"rows": [row(8, 1.0, 0.05), row(64, 1.0, 0.01, std=0.02)]}}, None)
    assert near0["image_kid_ratio_8_over_64"] is None and "image_kid_floor_vq_recon" not in near0


def test_results_written_before_kid_still_summarise():
    summary = load_eval_script("images64_summary")
    out = summary.headline({"image_sampling": {"rows": [row(8, 10.0, None), row(64, 8.0, None)],
                                               "reference_points": {"test": {"vq_reconstructions": 1.0}}}}, None)
    assert out["image_fid_ratio_8_over_64"] == 1.25 and not any(k.startswith("image_kid") for k in out)
