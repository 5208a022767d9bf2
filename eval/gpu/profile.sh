# Diagnosis on one GPU (≈ 5 min): where the time of a training step and of a decoding step goes
# (eval/profile_gpu.py, random weights), and the 350M training throughput with torch.compile.
#   run(command="bash eval/gpu/profile.sh", kind="nvidia-h200", carry=[".whl"])
OUT=${OUT:-out_profile}; DEADLINE=${DEADLINE:-540}
source eval/gpu/common.sh
say "decode profile, batch 64"
run_for 400 python3 eval/profile_gpu.py decode --size 125m --batch 64 --gen-length 256 --block-length 32 2>&1 | tee $OUT/decode_b64.txt | grep -v "^USDT"
say "decode profile, batch 8"
run_for 360 python3 eval/profile_gpu.py decode --size 125m --batch 8 --gen-length 256 --block-length 32 --rows 15 2>&1 | tee $OUT/decode_b8.txt | grep -v "^USDT"
say "train profile, 125m compiled"
run_for 240 python3 eval/profile_gpu.py train --size 125m --batch 32 --compile --rows 30 2>&1 | tee $OUT/train_125m.txt | grep -v "^USDT\|Warning"
say "bench_train 350m compiled"
run_for 10 python3 eval/bench_train.py --sizes 350m --models mdlm --batch 16 --steps 10 --warmup 3 --compile on --out $OUT/bench_train_350m.json 2>&1 | grep -v Warning | tail -4
say "done"
