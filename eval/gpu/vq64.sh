# The 64×64 RGB image tokenizer (16×16 = 256 codes, VQGAN loss) on one H200: train with recipes/configs/vq64_gpu.yaml (bf16,
# training capped at 230 s), then eval/vq_eval.py on the held-out split (PSNR, SSIM, codebook usage and perplexity,
# reconstruction-FID with a classifier). ~6 min wall in all (start-up, data, 230 s training, eval).
#
# Prepare on the development machine (the GPU machine has no torchmetrics (SSIM), diffusers (COMPARE=1 only), maybe
# no Pillow (PNGs), and not the images):
#   ../shared/device/fetch-wheels.sh torchmetrics lightning-utilities pillow diffusers==0.42.1 importlib-metadata zipp
#   python -m mdlm.data.image_sources export emoji .data/emoji64.npz            # 12 MB
#   optional: a recipes/train_classifier.py model on the same 3×64² images in .data/emoji_classifier
#             (switches on the perceptual loss and the reconstruction classifier-FID)
#   run(command="bash eval/gpu/vq64.sh", kind="nvidia-h200",
#       carry=[".whl", ".data/emoji64.npz", ".data/emoji_classifier"])
# Variables: DATA (default .data/emoji64.npz), CLF (default .data/emoji_classifier if it exists).
# DRY=1 bash eval/gpu/vq64.sh: the same steps on the CPU with the tiny config on a generated folder (seconds).
# COMPARE=1 (kind="nvidia-h200-x2"): at the same time on GPU 1, the same loss and budget with diffusers' Encoder/Decoder
# blocks and FSQ (--architecture vqgan, 64/128/128 channels, 8·5·5·5 = 1000 codes) — the design choice at GPU scale.
# Files back (8): run.log, train.log, vq_eval.json, reconstructions.png (originals / reconstructions rows),
# reconstructions.npz + originals.npz (eval/fid.py --images / --reference), vq64/config.json, vq64/model.safetensors;
# with COMPARE=1 originals.npz is left out and vq_eval_vqgan.json comes back instead.
set -x
source eval/gpu/env.sh || exit 1
OUT=${OUT:-out_vq64}; mkdir -p "$OUT/vq64"
T0=$(date +%s)
RUN=runs/vq64_gpu; EV=runs/vq64_eval
if [ "${DRY:-0}" = 1 ]; then
  DATA=${DATA:-runs/rgb_shapes_dry}
  python3 -c "from tests.rgb_fixtures import make_rgb_folder; make_rgb_folder('$DATA', per_class=6)"
  CFG=recipes/configs/vq64_tiny.yaml; EXTRA=(--max_steps 4 --disc_start_step 2); DEV=cpu; ALT=(16 32 32 --norm_num_groups 8)
else
  DATA=${DATA:-.data/emoji64.npz}; CFG=recipes/configs/vq64_gpu.yaml; EXTRA=(); DEV=cuda; ALT=(64 128 128)
fi
CLF=${CLF:-.data/emoji_classifier}
[ -f "$CLF/config.json" ] || CLF=
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  python3 -c "import diffusers, torch, transformers; print('diffusers', diffusers.__version__, 'transformers', transformers.__version__, 'torch', torch.__version__)"
  python3 -c "import torchmetrics; print('torchmetrics', torchmetrics.__version__)" || echo "no torchmetrics: SSIM will be null"
  echo "data $DATA | perceptual/FID classifier: ${CLF:-none}"
} 2>&1 | tee "$OUT/run.log"
[ -e "$DATA" ] || { echo "missing $DATA (see the header of eval/gpu/vq64.sh)" | tee -a "$OUT/run.log"; exit 1; }

# 1. train (stops at max_steps or after max_train_seconds = 230 s; then the test-split metrics and the final save)
rm -rf "$RUN" "$EV" runs/vq64_vqgan runs/vq64_vqgan_eval
if [ "${COMPARE:-0}" = 1 ]; then
  CUDA_VISIBLE_DEVICES=1 timeout 420 python3 recipes/train_vq.py --config "$CFG" --dataset "$DATA" "${EXTRA[@]}" \
    --output_dir runs/vq64_vqgan --architecture vqgan --quantizer fsq --fsq_levels 8 5 5 5 --layers_per_block 1 \
    --block_out_channels "${ALT[@]}" ${CLF:+--perceptual_model "$CLF"} > "$OUT/train_vqgan.log" 2>&1 &
fi
CUDA_VISIBLE_DEVICES=0 timeout 420 python3 recipes/train_vq.py --config "$CFG" --dataset "$DATA" --output_dir "$RUN" "${EXTRA[@]}" \
  ${CLF:+--perceptual_model "$CLF"} 2>&1 | grep -v "it/s\]\|examples/s\]" > "$OUT/train.log"
grep -v "^{'loss'" "$OUT/train.log" | tail -15 | tee -a "$OUT/run.log"
grep "^{'loss'" "$OUT/train.log" | awk 'NR % 5 == 0' | tail -10 | tee -a "$OUT/run.log"
wait  # the COMPARE run, if any
if [ "${COMPARE:-0}" = 1 ]; then grep -v "^{'loss'" "$OUT/train_vqgan.log" | tail -6 | tee -a "$OUT/run.log"; rm -f "$OUT/train_vqgan.log"; fi
[ -f "$RUN/model.safetensors" ] || { echo "training wrote no model" | tee -a "$OUT/run.log"; exit 1; }
cp "$RUN/config.json" "$RUN/model.safetensors" "$OUT/vq64/"
echo "train wall: $(( $(date +%s) - T0 )) s" | tee -a "$OUT/run.log"

# 2. reconstruction metrics on the held-out split (+ reconstruction classifier-FID with a classifier)
timeout 150 python3 eval/vq_eval.py --tokenizer "$RUN" --dataset "$DATA" --out-dir "$EV" --device "$DEV" \
  ${CLF:+--classifier "$CLF"} 2>&1 | tee -a "$OUT/run.log"
cp "$EV/metrics.json" "$OUT/vq_eval.json"; cp "$EV/reconstructions.png" "$EV/reconstructions.npz" "$OUT/"
if [ "${COMPARE:-0}" = 1 ]; then
  timeout 120 python3 eval/vq_eval.py --tokenizer runs/vq64_vqgan --dataset "$DATA" --out-dir runs/vq64_vqgan_eval \
    --device "$DEV" ${CLF:+--classifier "$CLF"} 2>&1 | tee -a "$OUT/run.log"
  cp runs/vq64_vqgan_eval/metrics.json "$OUT/vq_eval_vqgan.json"
else
  cp "$EV/originals.npz" "$OUT/"
fi
echo "total wall: $(( $(date +%s) - T0 )) s" | tee -a "$OUT/run.log"
ls -la "$OUT" "$OUT/vq64"
