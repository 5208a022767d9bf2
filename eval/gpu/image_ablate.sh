# Image sampling speed and the image ablations on one GPU, ≤ 570 s including training: train the class-conditional image MDM
# (recipes/configs/fmnist_mdm_gpu.yaml with the loop capped at $TRAIN_S = 150 s and max_steps 3000 so the
# cosine LR schedule ends near the cap), then
#   1. eval/bench_image.py: images/s and NFE per image at 8/16/32 steps, batch 256, CFG off / constant /
#      interval (0, 0.5], bf16 and fp32 weights;
#   2. the grid eval/ablations/image_sampling_gpu.yaml: image sampling (steps {1,4,8,16,32} × {cosine,linear,exp} ×
#      {maskgit-confidence, maskgit-random, moment}, the checkpoint's CFG) and CFG table (none / constant / interval 0-0.5 / 0.5-1 at
#      8/16/32 steps, NFE per image), $NPC images per class (default 100 → 1000 per row), classifier-FID
#      against the VQ reconstructions of the test images and against the test images.
# Every step has its own timeout inside one deadline, so a failure or overrun keeps the other results
# (eval/ablate.py rewrites results.json after each part).
#
#   mkdir -p .artifacts/fmnist_idx && cp /usr/share/datasets/fashion-mnist/*.gz .artifacts/fmnist_idx/
#   run(command="bash eval/gpu/image_ablate.sh", kind="nvidia-h200",
#       carry=[".whl", ".artifacts/vq_tiny", ".artifacts/fmnist_classifier", ".artifacts/fmnist_idx"])
# Short on device time: DEADLINE (s), TRAIN_S, NPC, DTYPES ("bfloat16"), TRAIN_RESERVE / BENCH_RESERVE (seconds
# kept for the later steps when capping training / the benchmark); the settings of the committed run are in
# docs/ablations/README.md.
# Estimate: wheels ~15 s, training ~175 s (encode + 150 s loop + eval/save), bench ~40 s, grid ~80 s,
# CFG table ~20 s, start-ups ~30 s: ≈ 360 s.
# Files back (8): run.log, eval_metrics.json, bench_image_bf16.json, bench_image_fp32.json, image_sampling.md,
# cfg.md, results.json, ablate.tgz (every table + plot + the training's log_history.json; without matplotlib on the machine the plots are
# missing: draw them here with `python eval/ablate.py --replot DIR` after untarring).
T0=$(date +%s)
DEADLINE=${DEADLINE:-560}  # seconds after T0 by which everything must have ended
cap() { local want=$1 l; l=$(( $(left) - ${2:-5} )); [ "$l" -lt "$want" ] && want=$l; [ "$want" -lt 1 ] && want=1; echo "$want"; }
OUT=${OUT:-out_image_ablate}
source eval/gpu/common.sh
RUN=runs/fmnist_mdm_gpu
TRAIN_S=${TRAIN_S:-150}; NPC=${NPC:-100}
# extra flags appended to the three commands (later flags win), e.g. ABLATE_ARGS="--set image_sampling.steps=[8,16]"
TRAIN_ARGS=${TRAIN_ARGS:-}; BENCH_ARGS=${BENCH_ARGS:-}; ABLATE_ARGS=${ABLATE_ARGS:-}
need_files "carry .artifacts/vq_tiny .artifacts/fmnist_classifier .artifacts/fmnist_idx" .artifacts/vq_tiny/model.safetensors \
  .artifacts/fmnist_classifier/model.safetensors .artifacts/fmnist_idx/train-images-idx3-ubyte.gz

say "1. train $RUN (loop capped at $TRAIN_S s)"
rm -rf "$RUN"
timeout "$(cap $((TRAIN_S + 60)) ${TRAIN_RESERVE:-200})" python3 recipes/train_image.py --vq_model .artifacts/vq_tiny \
  --config recipes/configs/fmnist_mdm_gpu.yaml --data_dir .artifacts/fmnist_idx --output_dir "$RUN" \
  --max_train_seconds "$TRAIN_S" --max_steps 3000 --warmup_steps 150 --save_strategy no --sample_on_end 0 $TRAIN_ARGS 2>&1 \
  | grep -v "it/s\]\|examples/s\]\|batch/s\]\|^{'loss'\|Loading weights" | tail -12 | tee -a "$LOG"
cp "$RUN/eval_metrics.json" "$OUT/" 2>/dev/null || { say "training failed: no checkpoint, nothing to evaluate"; exit 1; }

say "2. bench_image.py (batch 256, 8/16/32 steps, CFG off / constant / interval 0-0.5)"
for dt in ${DTYPES:-bfloat16 float32}; do
  tag=$([ $dt = bfloat16 ] && echo bf16 || echo fp32)
  timeout "$(cap 45 ${BENCH_RESERVE:-150})" python3 eval/bench_image.py --model "$RUN" --steps 8 16 32 --batch 256 --repeats 3 \
    --device cuda --dtype $dt --out "$OUT/bench_image_$tag.json" --force $BENCH_ARGS 2>&1 | grep -v "Loading weights" | tee -a "$LOG"
done

say "3. ablate.py: image sampling grid + CFG table ($NPC images per class and row)"
rm -rf /tmp/ablate_image
timeout "$(cap 400 10)" python3 eval/ablate.py eval/ablations/image_sampling_gpu.yaml --out /tmp/ablate_image \
  --set images.model="$RUN" --set images.num_per_class="$NPC" $ABLATE_ARGS 2>&1 \
  | grep -v "Loading weights\|^|\|^$\|^#\|^- \*\*\|^\*\*\|^[0-9]* images per class" | tee -a "$LOG"
cp /tmp/ablate_image/image_sampling.md /tmp/ablate_image/cfg.md /tmp/ablate_image/results.json "$OUT/" 2>/dev/null
cp "$RUN/log_history.json" /tmp/ablate_image/train_log_history.json 2>/dev/null
tar czf "$OUT/ablate.tgz" -C /tmp/ablate_image . 2>/dev/null
cat "$OUT/cfg.md" 2>/dev/null | grep "^|" | tee -a "$LOG"
say "done"
ls -la "$OUT"
