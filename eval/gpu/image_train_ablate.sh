# Image training grid on one GPU, ≤ 570 s: 16 short runs of recipes/train_image.py
# (recipes/configs/fmnist_mdm_gpu.yaml's 14M model, bf16) for schedule {linear, cosine, exp, log-exp} ×
# weighting {elbo, maskgit} × t_min {0.001, 0.2} — eMIGM Table 9 / Fig. 2's axes — each ≤ $STEPS = 400 steps
# (warm-up 40, cosine LR) and at most $RUN_S = 18 s of training loop, then its validation NELBO on the
# 10k test images and classifier-FID + class accuracy of 1000 samples (100 per class) at 8 and 16 steps
# with the checkpoint's sampler defaults (cosine schedule, CFG 1), against the VQ reconstructions of the
# test images and against the test images. eval/ablate.py rewrites image_training.md and results.json
# after every run and a failed run is a row saying why, so a timeout keeps the finished runs.
#
#   mkdir -p .artifacts/fmnist_idx && cp /usr/share/datasets/fashion-mnist/*.gz .artifacts/fmnist_idx/
#   run(command="bash eval/gpu/image_train_ablate.sh", kind="nvidia-h200",
#       carry=[".whl", ".artifacts/vq_tiny", ".artifacts/fmnist_classifier", ".artifacts/fmnist_idx"])
# Estimate (not re-measured since every run became its own recipes/train_image.py process): wheels ~15 s,
# reference features ~30 s, then per run ~18 s of training + ~8 s (build, validation ELBO, save, 2 × 1000
# samples) + the process's start-up (imports, CUDA init, token encoding: several seconds) — ≥ 16 × 26 + 45 ≈ 460 s.
# Files back: run.log, image_training.md, results.json, image_training.png (needs matplotlib on the machine;
# else draw it here: `python eval/ablate.py --replot DIR` with results.json in DIR).
DEADLINE=${DEADLINE:-560}
OUT=${OUT:-out_image_train_ablate}
source eval/gpu/common.sh
STEPS=${STEPS:-400}; RUN_S=${RUN_S:-18}; NPC=${NPC:-100}
ABLATE_ARGS=${ABLATE_ARGS:-}  # extra eval/ablate.py flags (later flags win), e.g. "--set image_training.t_min=[0.2]"
need_files "carry .artifacts/vq_tiny .artifacts/fmnist_classifier .artifacts/fmnist_idx" .artifacts/vq_tiny/model.safetensors \
  .artifacts/fmnist_classifier/model.safetensors .artifacts/fmnist_idx/train-images-idx3-ubyte.gz

say "image training grid: runs of ≤ $STEPS steps / ≤ $RUN_S s each, $NPC samples per class at 8 and 16 steps"
rm -rf /tmp/ablate_image_train
run_for 8 python3 eval/ablate.py eval/ablations/image_training_gpu.yaml --out /tmp/ablate_image_train \
  --set image_training.max_steps="$STEPS" --set image_training.max_seconds="$RUN_S" --set images.num_per_class="$NPC" \
  $ABLATE_ARGS 2>&1 \
  | grep -v "Loading weights\|^$\|^#\|^- \*\*\|^Short runs" | tee -a "$LOG"
say "ablate.py ended (status ${PIPESTATUS[0]}; 124 = the time limit: the finished runs are in the table)"
cp /tmp/ablate_image_train/image_training.md /tmp/ablate_image_train/results.json "$OUT/" 2>/dev/null
cp /tmp/ablate_image_train/image_training.png "$OUT/" 2>/dev/null
ls -la "$OUT"
