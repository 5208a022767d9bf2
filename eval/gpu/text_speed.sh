# Decoding speed on one GPU, one call (≤ 10 min): train a ~125M MDM on Shakespeare+Bible
# (BASE_STEPS, default 1500, into runs/base125), then
#   1. eval/bench_cache.py: LLaDA's uncached one-token-per-step loop vs window head / CUDA graphs / Fast-dLLM
#      dual cache / threshold 0.9 and their combinations, batch 1 (gen length 256 and 512) and batch 64
#      (256), block 32, bf16; generated texts come back in bench_cache_samples.tgz to be scored on the CPU:
#      tar xzf bench_cache_samples.tgz && python eval/genppl.py samples/G256_*.jsonl
#   2. eval/bench_sampler.py: the sampler's own overhead over pure forwards (batch 8, 256 tokens, block 32),
#      eager and with CUDA graphs
#   run(command="bash eval/gpu/text_speed.sh", kind="nvidia-h200", carry=[".whl", ".data/shakespeare_bible"])
OUT=${OUT:-out_text_speed}; DEADLINE=${DEADLINE:-575}
source eval/gpu/common.sh
BASE=${BASE:-runs/base125}; BASE_STEPS=${BASE_STEPS:-1500}
need_files "carry .data/shakespeare_bible" .data/shakespeare_bible/dataset_dict.json
if [ ! -f $BASE/config.json ]; then
  say "base: gpt2_125m, $BASE_STEPS steps"
  run_for 260 python3 recipes/train_text.py --config recipes/configs/gpt2_125m.yaml --dataset .data/shakespeare_bible \
    --max_steps $BASE_STEPS --eval_strategy no --save_strategy no --logging_steps 100 --max_eval_sequences 128 \
    --sample_on_end 0 --output_dir $BASE 2>&1 | tr '\r' '\n' | grep -E "^step |'loss'|validation|rror" | tail -12 | tee $OUT/base_train.log
  need_files "the base model did not finish" $BASE/config.json
fi
say "bench_cache, batch 1 (256, 512)"
run_for 150 python3 eval/bench_cache.py --model $BASE --gen-length 256 512 --block-length 32 --batch-size 1 \
  --repeats 1 --device cuda --dtype bf16 --out $OUT/bench_cache_b1 2>&1 | grep -v "Loading weights" | grep -v "^B="
say "bench_cache, batch 64 (256)"
run_for 60 python3 eval/bench_cache.py --model $BASE --gen-length 256 --block-length 32 --batch-size 64 \
  --repeats 1 --device cuda --dtype bf16 --out $OUT/bench_cache_b64 2>&1 | grep -v "Loading weights" | grep -v "^B="
for d in bench_cache_b1 bench_cache_b64; do
  [ -d $OUT/$d/samples ] && tar czf $OUT/${d}_samples.tgz -C $OUT/$d samples && rm -rf $OUT/$d/samples
done
say "bench_sampler (overhead), batch 8"
run_for 5 python3 eval/bench_sampler.py --model $BASE --batch 8 --gen-length 256 --steps 128 --block-length 32 \
  --repeats 2 --dtype bfloat16 --device cuda --out $OUT/bench_sampler_b8.json --overwrite 2>&1 | grep -v "Loading weights" | head -16
say "done"
