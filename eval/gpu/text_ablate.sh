# Text ablations and sampler overhead on one GPU. Parts run in this order, each only if named
# in PARTS and only while time is left (DEADLINE, default 585 s; a part with < 20 s left is skipped and says so):
#
#   base      the ~125M base model (recipes/configs/gpt2_125m.yaml, $BASE_STEPS = 1500 steps on
#             .data/shakespeare_bible, ~245 s), kept in runs/base125 while the machine stays warm (30 s after a call)
#   sampling  the grid eval/ablations/text_sampling_gpu.yaml on runs/base125: steps {4, 8, 16, 32, 64} × {cosine,
#             linear, exp} × 4 strategies, 64 unconditional samples × 128 tokens per row, judge: none (~130 s); the samples
#             come back in text_samples.tgz and are scored here on the CPU with the SmolLM2 judge (~70 s a row):
#               D=docs/ablations/h100_text_sampling; mkdir -p $D && cp results.json $D/ && tar xzf text_samples.tgz -C $D
#               python eval/ablate.py --score-samples $D
#   speed     eval/bench_sampler.py on runs/base125, batch 8 and 64 × 256 tokens, 128 steps, block 32 (~80 s a batch)
#   grid      the grid eval/ablations/text_training_gpu.yaml: schedule {linear, cosine, exp, log-exp} × weighting {elbo,
#             maskgit} × t_min {0.001, 0.1}, $GRID_STEPS = 600 steps each of recipes/configs/shakespeare_tiny.yaml
#             on .data/shakespeare_bible, bf16 (~22 s a run; a run cut by the deadline is missing from the table)
#
#   run(command="PARTS='base sampling' bash eval/gpu/text_ablate.sh", kind="nvidia-h200",
#       carry=[".whl", ".data/shakespeare_bible"])          # .whl: ../shared/device/fetch-wheels.sh
#   run(command="PARTS='speed grid' bash eval/gpu/text_ablate.sh", carry=[".whl", ".data/shakespeare_bible"])
#
# How the committed results in docs/ablations/ were made (calls, settings): docs/ablations/README.md.
PARTS=${PARTS:-"base sampling"}; DEADLINE=${DEADLINE:-585}
GRID_STEPS=${GRID_STEPS:-600}; GRID_ARGS=${GRID_ARGS:---dataset .data/shakespeare_bible}; BASE=${BASE:-runs/base125}; BASE_STEPS=${BASE_STEPS:-1500}
OUT=${OUT:-out_text_ablate}
source eval/gpu/common.sh
has() { case " $PARTS " in *" $1 "*) return 0;; *) return 1;; esac; }

if has base && [ ! -f "$BASE/config.json" ]; then
  say "base: gpt2_125m, $BASE_STEPS steps on .data/shakespeare_bible"
  run_for 5 python3 recipes/train_text.py --config recipes/configs/gpt2_125m.yaml \
    --dataset .data/shakespeare_bible --max_steps "$BASE_STEPS" --eval_strategy no --save_strategy no \
    --logging_steps 100 --max_eval_sequences 128 --sample_on_end 0 --output_dir "$BASE" 2>&1 | tr '\r' '\n' \
    | grep -E "^step |'loss'|validation|rror" | tail -8 | tee -a "$LOG"
  ls "$BASE/config.json" >/dev/null 2>&1 && say "base ready" || say "base FAILED"
fi

if has sampling; then
  [ -f "$BASE/config.json" ] || { say "no $BASE: run PARTS='base ...' first on this warm machine"; exit 1; }
  say "text sampling grid on $BASE (samples only; scored on the CPU)"
  rm -rf /tmp/abl_text_sampling
  run_for ${SAMPLING_RESERVE:-0} python3 eval/ablate.py eval/ablations/text_sampling_gpu.yaml --out /tmp/abl_text_sampling \
    --set text_sampling.model="$BASE" 2>&1 \
    | grep -v "Loading weights\|^$" | tee -a "$LOG"
  say "sampling grid ended (status ${PIPESTATUS[0]})"
  mkdir -p "$OUT/text_sampling"
  cp /tmp/abl_text_sampling/results.json "$OUT/text_sampling/" 2>/dev/null
  tar czf "$OUT/text_sampling/text_samples.tgz" -C /tmp/abl_text_sampling text_samples 2>/dev/null
fi

if has speed; then
  [ -f "$BASE/config.json" ] || { say "no $BASE"; exit 1; }
  for B in 8 64; do
    say "bench_sampler batch $B"
    run_for 3 python3 eval/bench_sampler.py --model "$BASE" --batch "$B" --gen-length 256 --steps 128 \
      --block-length 32 --repeats 2 --dtype bfloat16 --device cuda --out "$OUT/bench_sampler_b$B.json" --overwrite 2>&1 \
      | grep -v "Loading weights" | head -14 | tee -a "$LOG"
  done
fi

if has grid; then
  say "text training grid: 16 runs × $GRID_STEPS steps (shakespeare_tiny.yaml, $GRID_ARGS, GPU, bf16)"
  rm -rf /tmp/abl_text_train
  run_for 10 python3 eval/ablate.py eval/ablations/text_training_gpu.yaml --out /tmp/abl_text_train \
    --set text_training.max_steps="$GRID_STEPS" \
    --set "text_training.train_args=--config recipes/configs/shakespeare_tiny.yaml --use_cpu false --bf16 true --eval_num_samples 4 --logging_steps 100 $GRID_ARGS" \
    2>&1 | grep -v "Loading weights\|^$" | tee -a "$LOG"
  say "grid ended (status ${PIPESTATUS[0]}; 124 = time limit, finished runs kept)"
  mkdir -p "$OUT/text_training"
  cp /tmp/abl_text_train/training.md /tmp/abl_text_train/results.json /tmp/abl_text_train/training.png "$OUT/text_training/" 2>/dev/null
fi

say "done"
ls -la "$OUT" | tee -a "$LOG"
