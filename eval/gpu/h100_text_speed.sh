# Issue 6 items 4a-4c on ONE H100, one call (≤ 10 min): train a ~125M MDM on Shakespeare+Bible
# (BASE_STEPS, default 1500; kept in runs/base125 for a following eval/gpu/lora_deepspeed.sh call while
# the machine is warm), then
#   1. eval/bench_sampler.py: the sampler's own overhead over pure forwards (batch 8, 256 tokens, block 32)
#   2. eval/bench_cache.py: uncached one-token-per-step LLaDA loop vs Fast-dLLM dual cache / threshold 0.9 /
#      both, at generation length 256 and 512, block 32, batch $BATCH (default 64), bf16; generated texts
#      come back in bench_cache_samples.tgz to be scored on the CPU:
#      tar xzf bench_cache_samples.tgz && python eval/genppl.py samples/G256_*.jsonl
#   run(command="bash eval/gpu/h100_text_speed.sh", kind="nvidia-h100-x1", carry=[".whl", ".data/shakespeare_bible"])
source eval/gpu/env.sh || exit 1
OUT=${OUT:-out_text_speed}; mkdir -p $OUT
T0=$(date +%s)
nvidia-smi --query-gpu=name,memory.total --format=csv
python3 -c "import transformers, torch; print('transformers', transformers.__version__, 'torch', torch.__version__)" || exit
BASE=${BASE:-runs/base125}; BASE_STEPS=${BASE_STEPS:-1500}; BATCH=${BATCH:-64}
if [ ! -f $BASE/config.json ]; then
  echo "=== base: gpt2_125m, $BASE_STEPS steps"
  timeout 330 python3 recipes/train_text.py --config recipes/configs/gpt2_125m.yaml --dataset .data/shakespeare_bible \
    --max_steps $BASE_STEPS --eval_strategy no --save_strategy no --logging_steps 100 --max_eval_sequences 128 \
    --sample_on_end 0 --output_dir $BASE 2>&1 | tr '\r' '\n' | grep -E "^step |'loss'|validation|rror" | tail -12 | tee $OUT/base_train.log
  ls $BASE/config.json || exit 1
fi
echo "base ready: $(( $(date +%s) - T0 )) s"
echo "=== bench_sampler (overhead)"
timeout 120 python3 eval/bench_sampler.py --model $BASE --batch 8 --gen-length 256 --steps 128 --block-length 32 \
  --repeats 2 --dtype bfloat16 --device cuda --out $OUT/bench_sampler_h100.json 2>&1 | grep -v "Loading weights" | head -12
echo "=== bench_cache ($(( $(date +%s) - T0 )) s)"
timeout $(( 580 - ($(date +%s) - T0) )) python3 eval/bench_cache.py --model $BASE --gen-length 256 512 --block-length 32 \
  --batch-size $BATCH --repeats 1 --no-prefix --device cuda --dtype bf16 --out $OUT/bench_cache 2>&1 | grep -v "Loading weights"
tar czf $OUT/bench_cache_samples.tgz -C $OUT/bench_cache samples && rm -rf $OUT/bench_cache/samples
echo "total: $(( $(date +%s) - T0 )) s"
