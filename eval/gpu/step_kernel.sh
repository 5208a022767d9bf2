# Issue 17: the greedy step's Triton row-stats kernel (mdlm/sampling/row_stats_triton.py) on one GPU — one call on
# nvidia-h200, carry [".whl"]:
#   run(command="OUT=$OUT bash eval/gpu/step_kernel.sh > $OUT/stdout.txt 2>&1; tail -40 $OUT/stdout.txt", carry=[".whl"])
# 1  the GPU tests of the kernel, the CUDA-graph step and the fused step (gpu_tests.txt)
# 2  eval/bench_greedy_step.py: the step alone on synthetic logits, batch 1 and 8 (step.txt, step.json)
# 3  eval/bench_sampler.py's graphed rows on a random 125M model, batch 8 × 256 tokens, 128 steps: the sampler's
#    overhead with the PyTorch statistics and with the kernel (sampler_*.json / .log)
# 4  eval/profile_gpu.py decode --compile at batch 8, in the time left (profile_b8.txt)
#   DRY=1 OUT=/tmp/sk bash eval/gpu/step_kernel.sh   # CPU dry run (tiny sizes)
# Run of 2026-12-01 (session 19): docs/benchmarks/h200_decode_kernel/ (step 2 failed there after its first row — the
# operator was not registered when asked for explicitly; fixed, re-run alone: PYTHONPATH=. python3
# eval/bench_greedy_step.py --out step.json). Its "torch" rows then also computed 1 − p(x̂) for the schedule and EB
# rules (3 float32 passes the step before the kernel did not make; removed since): their eager times are inflated.
OUT=${OUT:-out_step_kernel}; DEADLINE=${DEADLINE:-400}
source eval/gpu/common.sh
SAMPLER="--random-size 125m --batch 8 --gen-length 256 --steps 128 --block-length 32 --repeats 2 --dtype bfloat16"
STEP=""; PROFILE="decode --size 125m --batch 8 --gen-length 256 --block-length 32 --compile"
TESTS="tests/test_row_stats.py tests/test_cuda_graphs.py tests/test_fused_step.py"; BACKENDS="torch triton"
if [ "${DRY:-0}" = 1 ]; then
  SAMPLER="--random-size tiny --batch 2 --gen-length 32 --steps 16 --block-length 16 --repeats 1 --device cpu"
  STEP="--device cpu --replays 2 --vocab 512 --batch 2 --no-compile"; TESTS="tests/test_row_stats.py"; BACKENDS=torch
  PROFILE="decode --size tiny --batch 2 --gen-length 32 --block-length 16 --n 1 --device cpu"
fi
say "GPU tests: start"
run_for 330 python3 -m pytest -q -x $TESTS > $OUT/gpu_tests.txt 2>&1
say "GPU tests: exit $? | $(tail -1 $OUT/gpu_tests.txt)"
say "bench_greedy_step: start"
run_for 250 python3 eval/bench_greedy_step.py $STEP --out $OUT/step.json --overwrite > $OUT/step.txt 2>&1
say "bench_greedy_step: exit $?"; cat $OUT/step.txt | tee -a $LOG
for b in $BACKENDS; do
  say "bench_sampler --row-stats $b: start"
  run_for 60 python3 eval/bench_sampler.py $SAMPLER --only graphs --row-stats $b --out $OUT/sampler_$b.json --overwrite \
    > $OUT/sampler_$b.log 2>&1
  say "bench_sampler $b: exit $?"; grep "^|\|CUDA-graph rows" $OUT/sampler_$b.log | tee -a $LOG
done
say "profile_gpu $PROFILE: start"
run_for 5 python3 eval/profile_gpu.py $PROFILE > $OUT/profile_b8.txt 2>&1
say "profile: exit $?"
