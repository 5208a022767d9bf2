# Speed check on one GPU (≈ 8 min, random weights, no training): the CUDA-graph decoding tests on the GPU,
# decode timings at batch 1 and 64 (eval/profile_gpu.py: LLaDA loop vs window head vs graphs vs dual cache),
# and training throughput with the compiled loss and the RoPE tables (eval/bench_train.py, compile on).
#   run(command="bash eval/gpu/speed_check.sh", kind="nvidia-h200", carry=[".whl"])
OUT=${OUT:-out_speed_check}; DEADLINE=${DEADLINE:-570}
source eval/gpu/common.sh
say "GPU tests (CUDA graphs, greedy step, KV cache)"
run_for 500 python3 -m pytest -q -p no:cacheprovider tests/test_cuda_graphs.py tests/test_fused_step.py tests/test_kv_cache.py 2>&1 | tail -15
for B in 1 64; do
  say "decode, batch $B"
  run_for 320 python3 eval/profile_gpu.py decode --size 125m --batch $B --gen-length 256 --block-length 32 --rows 12 2>&1 | tee $OUT/decode_b$B.txt | grep -v "^USDT\|warn"
done
say "bench_train (compile on: model + loss)"
run_for 5 python3 eval/bench_train.py --sizes 125m 350m --batch 32 16 --steps 15 --warmup 4 --compile on --out $OUT/bench_train.json 2>&1 | grep -v Warning | tail -8
say "done"
