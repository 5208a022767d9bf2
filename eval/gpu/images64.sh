# The 64×64 colour-image pipeline of #18 on one H200, in two calls of ≤ 9.5 min (same warm machine, call 2 right
# after call 1: it reads runs/images64/ that call 1 left there):
#   STAGE=train   VQ (16×16 codes) → encode + text/class-conditioned MDM                    (call 1)
#   STAGE=mdm     the MDM only, on the VQ in runs/images64/vq that an earlier call left on this warm machine
#   STAGE=eval    classifier → caption/class grids + step strips → bench (batch 256) → ablation grid  (call 2)
#   STAGE=all     both (DRY=1 runs it on the CPU in a few minutes, on tests/rgb_fixtures.py's folder; all but
#                 step 4b, the CUDA-graph bench, which needs a GPU)
#
#   for s in emoji openclipart tuxpaint; do python -m mdlm.data.image_sources export $s .data/${s}64.npz; done  # here
#   C='[".whl", ".data/emoji64.npz", ".data/openclipart64.npz", ".data/tuxpaint64.npz"]'   (~30 MB of .npz)
#   run(command="STAGE=train bash eval/gpu/images64.sh", kind="nvidia-h200", carry=C)
#   run(command="STAGE=eval bash eval/gpu/images64.sh", kind="nvidia-h200", carry=C)
#   run(command="STAGE=mdm bash eval/gpu/images64.sh", kind="nvidia-h200", carry=C)     # retrain the MDM only (~5 min)
# Data: the VQ, the classifier and every metric use $DATA (emoji; its test split is the held-out set); the MDM trains
# on $MDM_DATA (emoji + openclipart + tuxpaint, mirrored: recipes/configs/emoji_t2i_mdm_gpu.yaml) and keeps its best
# checkpoint by validation ELBO on emoji's test split.
#   DRY=1 bash eval/gpu/images64.sh                                       # CPU dry run (OUT=runs/images64_dry/out)
#
# Time budget (s) of call 1 (DEADLINE 560): wheels 15 | VQ ≤ 245 (vq64_gpu.yaml; its loop capped at $VQ_S = 200 s by
#   --max_train_seconds, + start-up / eval ~30 s, a hard timeout at 260 s) | MDM ≤ 290 (encode 3.8k images ~5 s,
#   loading 11.3k images + encoding 22k rows ~20 s, loop capped at $TRAIN_S = 220 s, final save + samples ~40 s).
# STAGE=mdm: wheels 15 | MDM ≤ 290 as above.
# Time budget (s) of call 2 (DEADLINE 560): classifier ≤ 70 (emoji_classifier_gpu.yaml, 40 epochs of 3.4k images) |
#   grids + strips 30 | bench_image.py 4 step counts × 3 CFG settings + the greedy CUDA-graph rows (~30),
#   batch 256, bf16 ~60 | ablate.py images64_gpu.yaml: 54 sampling rows + 12 CFG rows of 1008 images, 9 caption
#   rows of 300 images ~330 | slack 100.
# Files back: call 1 (6): run.log, vq_metrics.json, vq_reconstructions.png, mdm_eval_metrics.json (the kept best
#   checkpoint's ELBO, eval_best_step), mdm_log_history.json, mdm_samples.png; STAGE=mdm: the last four;
#   call 2 (8): run.log (classifier accuracy, the CFG table, the headline figures), prompts.png, classes.png,
#   strips.png, bench_image.json, image_sampling.md, captions.md, ablate.tgz (results.json, cfg.md, every plot,
#   bench_image_graphs.json: greedy steps as CUDA graphs; a refusal is logged).
# CLASSIFIER=DIR (carried, e.g. eval/gpu/emoji_classifier.sh's emoji_classifier/) skips the classifier training.
# Hooks on the other engineers' work (a missing file → the fallback named in the log):
#   CLF_CONFIG  imgdata's recipes/configs/emoji_classifier_{gpu,tiny}.yaml  (fallback: fmnist_classifier.yaml at 64 px RGB)
#   VQ_CONFIG   vq64's recipes/configs/vq64_{gpu,tiny}.yaml                   (fallback: fmnist_vq_{gpu,tiny}.yaml at 64 px RGB,
#               two stride-2 levels → 16×16 codes)
T0=$(date +%s)
DEADLINE=${DEADLINE:-560}
STAGE=${STAGE:-all}
if [ "${DRY:-0}" = 1 ]; then
  R=${R:-runs/images64_dry}; OUT=${OUT:-$R/out}; SIZE=tiny; DEADLINE=100000
else
  OUT=${OUT:-out_images64}; R=${R:-runs/images64}; SIZE=gpu
fi
source eval/gpu/common.sh
VQ_S=${VQ_S:-200}; TRAIN_S=${TRAIN_S:-220}; NPC=${NPC:-112}  # 112 × 9 emoji categories = 1008 images per row
PY="python3"; [ "${DRY:-0}" = 1 ] && PY="nice python3"
quiet() { grep -v "it/s\]\|examples/s\]\|batch/s\]\|Loading weights\|^{'loss'\|^step [0-9]*:"; }

if [ "${DRY:-0}" = 1 ]; then
  DATA=${DATA:-$R/rgb_shapes}
  [ -d "$DATA" ] || python3 -c "import sys; sys.path.insert(0, 'tests'); from rgb_fixtures import make_rgb_folder; make_rgb_folder('$DATA', per_class=12)"
  DATA2=${DATA2:-$R/rgb_shapes_more}  # a second captioned folder: the added-set path of --dataset A,B
  [ -d "$DATA2" ] || python3 -c "import sys; sys.path.insert(0, 'tests'); from rgb_fixtures import make_rgb_folder; make_rgb_folder('$DATA2', per_class=6, seed=1)"
  MDM_DATA=${MDM_DATA:-imagefolder:$DATA,imagefolder:$DATA2}
  CPU=(--use_cpu true --torch_num_threads 1); MDM_CONFIG=recipes/configs/t2i_mdm_tiny.yaml
  # the GPU config's regularisation and best-checkpoint flags, on the tiny model
  DRY_MDM=(--hflip true --model_config '{"hidden_dropout": 0.1, "attention_dropout": 0.1}' --eval_strategy steps
           --eval_steps 10 --save_strategy best --save_only_model true --save_total_limit 1 --load_best_model_at_end true
           --metric_for_best_model nll --greater_is_better false)
  PROMPTS=("red circle" "blue square" "green circle"); NPC=${DRY_NPC:-3}
  GRID_SET=(--set "images.num_per_class=$NPC" --set "image_sampling.steps=[1,8]" --set "image_sampling.schedules=[cosine]"
            --set "guidance.steps=[4]" --set "guidance.intervals=[[0.0,0.5]]" --set images.dtype=null --set images.batch_size=64
            --set "captions.steps=[8]" --set "captions.scales=[0.0,1.0]" --set captions.num_captions=4 --set captions.k=2)
  BENCH=(--steps 8 --batch 8 --repeats 1 --dtype float32 --device cpu)
else
  DATA=${DATA:-.data/emoji64.npz}
  MDM_DATA=${MDM_DATA:-$DATA,.data/openclipart64.npz,.data/tuxpaint64.npz}; DRY_MDM=()
  need_files "make it here: python -m mdlm.data.image_sources export NAME .data/NAME64.npz, carry it" "$DATA" \
    $(echo "$MDM_DATA" | tr ',' ' ' | sed 's/imagefolder:[^ ]*//g')
  CPU=(); MDM_CONFIG=recipes/configs/emoji_t2i_mdm_gpu.yaml
  PROMPTS=("red apple" "green apple" "cat face" "dog face" "smiling face with heart-shaped eyes" "rocket" "japan flag"
           "slice of pizza" "ghost" "christmas tree")  # emoji names (in the data set; held out or not)
  GRID_SET=(--set "images.num_per_class=$NPC")
  BENCH=(--steps 8 16 32 64 --batch 256 --repeats 3 --dtype bfloat16 --device cuda --cfg-interval 0.5 1)
fi
pick() { if [ -f "$1" ]; then echo "$1"; else echo ""; fi; }
CLF_CONFIG=${CLF_CONFIG:-$(pick recipes/configs/emoji_classifier_$SIZE.yaml)}
VQ_CONFIG=${VQ_CONFIG:-$(pick recipes/configs/vq64_$SIZE.yaml)}

stage_classifier() {
  rm -rf "$R/classifier"
  if [ -n "$CLASSIFIER" ]; then  # one trained already (eval/gpu/emoji_classifier.sh) and carried: no retraining
    need_files "carry the classifier dir named by CLASSIFIER" "$CLASSIFIER/model.safetensors"
    say "classifier: $CLASSIFIER (carried)"; mkdir -p "$R"; cp -r "$CLASSIFIER" "$R/classifier"; return
  fi
  say "classifier on $DATA (${CLF_CONFIG:-fallback fmnist_classifier.yaml at 64 px RGB})"
  if [ -n "$CLF_CONFIG" ]; then CLF=(--config "$CLF_CONFIG"); else
    CLF=(--config recipes/configs/fmnist_classifier.yaml --image_size 64 --channels_in 3 --num_train_epochs 30); fi
  [ "${DRY:-0}" = 1 ] && CLF+=(--num_train_epochs 1 "${CPU[@]}")
  run_for 420 $PY recipes/train_classifier.py "${CLF[@]}" --dataset "$DATA" --output_dir "$R/classifier" 2>&1 | quiet | tail -4 | tee -a "$LOG"
  [ -f "$R/classifier/model.safetensors" ] || say "classifier failed (the ablation needs it)"
}

stage_train() {
  stage_vq
  stage_mdm
}

stage_vq() {
  say "1. VQ tokenizer, 16×16 codes (${VQ_CONFIG:-fallback fmnist_vq_$SIZE.yaml at 64 px RGB})"
  rm -rf "$R/vq"
  if [ -n "$VQ_CONFIG" ]; then VQ=(--config "$VQ_CONFIG"); else
    VQ=(--config recipes/configs/fmnist_vq_$SIZE.yaml --image_size 64 --channels 3 --max_eval_samples 500)
    [ "${DRY:-0}" = 1 ] || VQ+=(--num_train_epochs 150 --warmup_steps 100 --save_strategy no); fi
  grep -q max_train_seconds recipes/train_vq.py && VQ+=(--max_train_seconds "$VQ_S")
  [ "${DRY:-0}" = 1 ] && VQ+=(--max_steps 20 "${CPU[@]}")
  run_for 300 timeout $((VQ_S + 60)) $PY recipes/train_vq.py "${VQ[@]}" --dataset "$DATA" --output_dir "$R/vq" 2>&1 | quiet | tail -4 | tee -a "$LOG"
  cp "$R/vq/metrics.json" "$OUT/vq_metrics.json" 2>/dev/null
  cp "$R/vq/reconstructions.png" "$OUT/vq_reconstructions.png" 2>/dev/null
  [ -f "$R/vq/model.safetensors" ] || { say "VQ training failed: nothing to train the MDM on"; exit 1; }
}

stage_mdm() {
  need_files "run STAGE=train first on this machine (the MDM needs the VQ)" "$R/vq/model.safetensors"
  say "2. encode + text/class-conditioned MDM ($MDM_CONFIG on $MDM_DATA, loop ≤ $TRAIN_S s)"
  rm -rf "$R/mdm"
  MDM=("${DRY_MDM[@]}"); [ "${DRY:-0}" = 1 ] || MDM=(--max_train_seconds "$TRAIN_S")
  run_for 5 $PY recipes/train_image.py --config "$MDM_CONFIG" --vq_model "$R/vq" --dataset "$MDM_DATA" \
    --output_dir "$R/mdm" "${CPU[@]}" "${MDM[@]}" $TRAIN_ARGS 2>&1 | quiet | grep -v "^{'eval_nll'" | tail -8 | tee -a "$LOG"
  python3 -c "import json; h = json.load(open('$R/mdm/log_history.json'))['log_history']; print('validation ELBO (nats/token) by step:', ' '.join(f\"{r['step']}:{r['eval_nll']:.3f}\" for r in h if 'eval_nll' in r))" 2>&1 | tee -a "$LOG"
  cp "$R/mdm/eval_metrics.json" "$OUT/mdm_eval_metrics.json" 2>/dev/null || { say "MDM training failed"; exit 1; }
  cp "$R/mdm/log_history.json" "$OUT/mdm_log_history.json"; cp "$R/mdm/samples.png" "$OUT/mdm_samples.png" 2>/dev/null
}

stage_eval() {
  need_files "run STAGE=train first on this machine" "$R/mdm/model.safetensors"
  stage_classifier
  G=(--model "$R/mdm" --output-dir "$OUT" --overwrite --seed 0)
  say "3. pictures: one row per prompt, one row per class, the canvas over the steps (8 steps, CFG 1 while τ > 0.5)"
  ARGS=(); for p in "${PROMPTS[@]}"; do ARGS+=(--prompt "$p"); done
  run_for 300 $PY recipes/generate.py "${G[@]}" "${ARGS[@]}" --num-samples 8 --steps 8 --cfg-scale 1 \
    --cfg-interval 0.5 1 --out prompts.png --save-steps strips.png 2>&1 | quiet | tee -a "$LOG"
  run_for 300 $PY recipes/generate.py "${G[@]}" --class-id all --num-samples 8 --steps 8 --cfg-scale 1 \
    --out classes.png 2>&1 | quiet | tee -a "$LOG"
  say "4. bench_image.py (images/s and NFE per image; CFG off / constant / interval)"
  run_for 300 $PY eval/bench_image.py --model "$R/mdm" "${BENCH[@]}" --out "$OUT/bench_image.json" --overwrite 2>&1 | quiet | tee -a "$LOG"
  rm -f "$R/bench_image_graphs.json"
  if [ "${DRY:-0}" != 1 ]; then  # greedy steps (temperature 0, no choice noise, no CFG) replayed as CUDA graphs
    say "4b. bench_image.py, greedy + CUDA graphs (the sampler allows graphs only there)"
    run_for 360 $PY eval/bench_image.py --model "$R/mdm" "${BENCH[@]}" --settings off --sampler temperature=0 \
      --sampler choice_temperature=0 --sampler cuda_graphs=true --out "$R/bench_image_graphs.json" 2>&1 \
      | quiet | grep "^|\|error" | tee -a "$LOG"
  fi
  say "5. ablate.py eval/ablations/images64_gpu.yaml ($NPC images per class and row)"
  rm -rf "$R/ablate"
  run_for 10 $PY eval/ablate.py eval/ablations/images64_gpu.yaml --out "$R/ablate" --set images.model="$R/mdm" \
    --set images.classifier="$R/classifier" --set images.dataset="$DATA" "${GRID_SET[@]}" $ABLATE_ARGS 2>&1 \
    | quiet | grep -v "^|\|^$\|^#\|^- \*\*\|^\*\*" | tee -a "$LOG"
  cp "$R/ablate/image_sampling.md" "$R/ablate/captions.md" "$OUT/" 2>/dev/null
  cp "$R/bench_image_graphs.json" "$R/ablate/" 2>/dev/null
  tar czf "$OUT/ablate.tgz" -C "$R/ablate" . 2>/dev/null
  grep "^|" "$R/ablate/cfg.md" "$OUT/captions.md" 2>/dev/null | tee -a "$LOG"
  say "6. headline figures (keys of docs/benchmarks/results.json)"
  python3 eval/images64_summary.py --ablation "$R/ablate/results.json" --bench "$OUT/bench_image.json" 2>&1 | tee -a "$LOG"
}

case "$STAGE" in
  train) stage_train ;;
  mdm) stage_mdm ;;
  eval) stage_eval ;;
  all) stage_train; stage_eval ;;
  *) echo "STAGE must be train, mdm, eval or all, got $STAGE" >&2; exit 2 ;;
esac
say "done (stage $STAGE)"
ls -la "$OUT"
