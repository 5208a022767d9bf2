# Image MDM + generation on one GPU, ≤ 9 minutes: train the class-conditional MDM on Fashion-MNIST
# VQ tokens (recipes/configs/fmnist_mdm_gpu.yaml, training capped at 300 s), sample a 10-classes × 10 grid
# and a --save-steps strip at 16 steps with CFG, then classifier-FID + class accuracy at 8/16/32 steps
# (1000 images each, with and without CFG).
#
# Nothing is trained here but the MDM: the VQ tokenizer and the classifier were trained on CPU and are
# carried, and so are the Fashion-MNIST IDX files (the GPU machine has no Debian data set):
#   mkdir -p .artifacts/fmnist_idx && cp /usr/share/datasets/fashion-mnist/*.gz .artifacts/fmnist_idx/
#   run(command="bash eval/gpu/image_mdm.sh", kind="nvidia-h200",
#       carry=[".whl", ".artifacts/vq_tiny", ".artifacts/fmnist_classifier", ".artifacts/fmnist_idx"])
# Needs Pillow on the machine for the PNGs (checked below; without it only the numbers are produced).
# Files back (8 at most): train.log, log_history.json, eval_metrics.json, grid.png, strip.png,
# sample_eval.json, sample_eval_nocfg.json, run.log.
set -x
source eval/gpu/env.sh || exit 1
OUT=${OUT:-out_image}; mkdir -p "$OUT"
RUN=runs/fmnist_mdm_gpu
T0=$(date +%s)
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import datasets, transformers, torch; print('datasets', datasets.__version__, 'transformers', transformers.__version__, 'torch', torch.__version__)"
} 2>&1 | tee "$OUT/run.log"
for p in .artifacts/vq_tiny/model.safetensors .artifacts/fmnist_classifier/model.safetensors .artifacts/fmnist_idx/train-images-idx3-ubyte.gz; do
  [ -f "$p" ] || { echo "missing $p: carry .artifacts/vq_tiny .artifacts/fmnist_classifier .artifacts/fmnist_idx" | tee -a "$OUT/run.log"; exit 1; }
done
if python3 -c "import PIL" 2>/dev/null; then PNG=1; SAMPLES=10; else PNG=0; SAMPLES=0; echo "no Pillow: PNGs skipped" | tee -a "$OUT/run.log"; fi

# 1. train (the loop stops at max_steps or after max_train_seconds=300; then the final save + ELBO)
rm -rf "$RUN"
timeout 480 python3 recipes/train_image.py --vq_model .artifacts/vq_tiny --config recipes/configs/fmnist_mdm_gpu.yaml \
  --data_dir .artifacts/fmnist_idx --output_dir "$RUN" --sample_on_end $SAMPLES 2>&1 \
  | grep -v "it/s\]\|examples/s\]\|batch/s\]" > "$OUT/train.log"
grep -v "^{'loss'" "$OUT/train.log" | tail -25
grep "^{'loss'" "$OUT/train.log" | awk 'NR % 10 == 0' | tail -8
cp "$RUN/log_history.json" "$RUN/eval_metrics.json" "$OUT/" || exit 1
echo "train wall: $(( $(date +%s) - T0 )) s" | tee -a "$OUT/run.log"

# 2. one row per class (10 × 10) at 16 steps with CFG, and the canvas over the steps
if [ "$PNG" = 1 ]; then
  python3 recipes/generate.py --model "$RUN" --class-id all --num-samples 10 --steps 16 --cfg-scale 1 --seed 0 \
    --out "$OUT/grid.png" --save-steps "$OUT/strip.png" 2>&1 | grep -v Loading | tee -a "$OUT/run.log"
fi

# 3. classifier-FID (Fashion-MNIST classifier features) + class accuracy at 8 / 16 / 32 steps, 1000 images each
python3 eval/image_sample_eval.py --model "$RUN" --classifier .artifacts/fmnist_classifier --data-dir .artifacts/fmnist_idx \
  --steps 8 16 32 --num-per-class 100 --batch-size 1000 --json "$OUT/sample_eval.json" 2>&1 | grep -v Loading | tee -a "$OUT/run.log"
python3 eval/image_sample_eval.py --model "$RUN" --classifier .artifacts/fmnist_classifier --data-dir .artifacts/fmnist_idx \
  --steps 8 16 32 --num-per-class 100 --batch-size 1000 --cfg-scale 0 --json "$OUT/sample_eval_nocfg.json" 2>&1 \
  | grep -v Loading | tee -a "$OUT/run.log"
echo "total wall: $(( $(date +%s) - T0 )) s" | tee -a "$OUT/run.log"
ls -la "$OUT"
