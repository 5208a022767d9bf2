# Issue #17 items 2–4 (adaptive commits, exact verification, sampler overhead) on one GPU, one call (≤ 10 min):
#   0. a ~125M MDM (gpt2_125m, BASE_STEPS default 600, into runs/base125) unless BASE already holds one;
#   1. the GPU tests of the graphs: whole-step CUDA graphs == eager for every fixed-shape policy (Fast-dLLM
#      threshold / factor, EB, EOS early stop), step_graph == eager (tests/test_cuda_graphs.py);
#   2. eval/bench_sampler.py at batch 8 (256 tokens, 128 steps, block 32, bf16): the sampler's own overhead
#      ("overhead, synced forwards" of the llada row; the "step_graph off" row is the before), NFE and tokens/s of
#      every rule, verify's token agreement with one-token-per-step greedy;
#   3. the same at batch 1 for the adaptive / verify rows.
#   run(command="bash eval/gpu/policies_speed.sh", kind="nvidia-h200", carry=[".whl", ".data/shakespeare_bible"])
# CPU dry run of the whole script (tiny model, seconds per stage): DRY=1 OUT=/tmp/dry bash eval/gpu/policies_speed.sh
OUT=${OUT:-out_policies_speed}; DEADLINE=${DEADLINE:-570}
source eval/gpu/common.sh
if [ -n "$DRY" ]; then
  BASE=${BASE:-$OUT/tiny}
  TRAIN=(--config recipes/configs/shakespeare_tiny.yaml --max_steps 10)
  BENCH=(--gen-length 32 --steps 32 --block-length 16 --repeats 1 --device cpu)
else
  BASE=${BASE:-runs/base125}
  need_files "carry .data/shakespeare_bible" .data/shakespeare_bible/dataset_dict.json
  TRAIN=(--config recipes/configs/gpt2_125m.yaml --dataset .data/shakespeare_bible --max_steps ${BASE_STEPS:-600})
  BENCH=(--gen-length 256 --steps 128 --block-length 32 --repeats 2 --device cuda --dtype bfloat16)
fi
if [ ! -f $BASE/config.json ]; then
  say "base model: ${TRAIN[*]}"
  run_for 300 python3 recipes/train_text.py "${TRAIN[@]}" --eval_strategy no --save_strategy no --logging_steps 100 \
    --sample_on_end 0 --output_dir $BASE 2>&1 | tr '\r' '\n' | grep -E "^step |'loss'|rror" | tail -6 | tee $OUT/base_train.log
  need_files "the base model did not finish" $BASE/config.json
fi
say "GPU tests: CUDA graphs == eager for every fixed-shape policy, step_graph == eager"
run_for 240 python3 -m pytest -q -m gpu tests/test_cuda_graphs.py 2>&1 | tail -5 | tee $OUT/gpu_tests.log
say "bench_sampler, batch 8"
run_for 90 python3 eval/bench_sampler.py --model $BASE --batch 8 "${BENCH[@]}" --out $OUT/bench_sampler_b8.json --overwrite \
  2>&1 | grep -v "Loading weights" | grep -E "^\||^model|^CUDA" | tee $OUT/bench_sampler_b8.txt
say "bench_sampler, batch 1 (adaptive rules, verify)"
run_for 5 python3 eval/bench_sampler.py --model $BASE --batch 1 "${BENCH[@]}" --only llada fast_dllm eb verify \
  --out $OUT/bench_sampler_b1.json --overwrite 2>&1 | grep -v "Loading weights" | grep -E "^\||^model|^CUDA" | tee $OUT/bench_sampler_b1.txt
say "done"
