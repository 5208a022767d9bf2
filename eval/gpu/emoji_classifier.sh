# The 64×64 feature network on one GPU (≤ 2 min): train the emoji-category classifier
# (recipes/configs/emoji_classifier_gpu.yaml) on the carried export, then the real-vs-real floor of its FID:
# classifier-FID(emoji train, emoji test) with the class accuracy of the train images (docs/images/evaluation.md).
#
# The GPU machine has no npm: export the emoji once here and carry it (git-ignored .data/):
#   python -m mdlm.data.image_sources export emoji .data/emoji64.npz          # 11.8 MB
#   run(command="bash eval/gpu/emoji_classifier.sh", kind="nvidia-h200", carry=[".whl", ".data/emoji64.npz"])
# CPU dry run (seconds, tiny sizes, the same commands):  DRY=1 bash eval/gpu/emoji_classifier.sh
# Files back: emoji_classifier/{config.json,model.safetensors,metrics.json} (5.8 MB), floors.json, run.log.
set -o pipefail
source eval/gpu/env.sh || exit 1
OUT=${OUT:-out_emoji_classifier}; mkdir -p "$OUT"
DATA=${DATA:-.data/emoji64.npz}
[ -f "$DATA" ] || { echo "missing $DATA: python -m mdlm.data.image_sources export emoji $DATA" | tee "$OUT/run.log"; exit 1; }
if [ "${DRY:-0}" = 1 ]; then
  CONFIG=recipes/configs/emoji_classifier_tiny.yaml; EXTRA="--max_steps 2"; MAXREF="--max-reference 64"
else
  CONFIG=recipes/configs/emoji_classifier_gpu.yaml; EXTRA=""; MAXREF=""
fi
T0=$(date +%s)
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no GPU (dry run)"
  python3 -c "import datasets, transformers, torch; print('datasets', datasets.__version__, 'transformers', transformers.__version__, 'torch', torch.__version__)"
} 2>&1 | tee "$OUT/run.log"
python3 recipes/train_classifier.py --config "$CONFIG" --dataset "$DATA" --output_dir "$OUT/emoji_classifier" \
  --disable_tqdm true $EXTRA 2>&1 | grep -v "Warning" | tail -5 | tee -a "$OUT/run.log" || exit 1
echo "train wall: $(( $(date +%s) - T0 )) s" | tee -a "$OUT/run.log"
python3 eval/fid.py --classifier "$OUT/emoji_classifier" --fake "$DATA:train" --real "$DATA:test" $MAXREF \
  | tee "$OUT/floors.json" | tee -a "$OUT/run.log" || exit 1
echo "total wall: $(( $(date +%s) - T0 )) s" | tee -a "$OUT/run.log"
