#!/usr/bin/env bash
# Second device call: question-swap negatives vs none, the cpu preset, and CPU measurements on
# two pinned cores of the device machine (training throughput, reader latency, int8 vs fp32 F1).
set -u
OUT=${1:-${OUT:-/tmp/out}}
D=.gpudata
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=true OMP_NUM_THREADS=4
R=/tmp/runs; M=/tmp/models; mkdir -p $R $M $OUT
lscpu | grep "Model name"
run() {
  local name=$1; shift
  timeout ${LIMIT:-470} taskset -c 0-13 python -m rag.training --data-dir $D --base-model $D/base \
    --run-dir $R/$name --output-dir $M/$name "$@" > $R/$name.log 2>&1
  echo "$name exit $?"
}
run gpu_swap --preset gpu &
run gpu_noswap --preset gpu --no-question-swap &
run cpu_preset --preset cpu &
( OMP_NUM_THREADS=2 taskset -c 14,15 python3 eval/reader/cpu_throughput.py cpu 30 $D $D/base > $R/cpu_throughput.log 2>&1
  OMP_NUM_THREADS=2 taskset -c 14,15 python3 eval/reader/latency.py $D/base 50 2 > $R/latency_base.log 2>&1 ) &
wait
python3 - "$R" "$M" > $R/selection.txt <<'PY'
import json, sys, pathlib
runs, models = map(pathlib.Path, sys.argv[1:])
best = None
for m in sorted(runs.glob("*/metrics.json")):
    d = json.loads(m.read_text()); name = m.parent.name
    h = d["history"][-1]
    print(name, "heldout", h, "v1dev", d.get("squad_v1.1_dev", {}).get("v1_always_answer"),
          "v2dev", d.get("squad_v2.0_dev", {}).get("v2_at_heldout_threshold"),
          "v2oracle", d.get("squad_v2.0_dev", {}).get("v2_at_dev_oracle_threshold_diagnostic"), "train_s", d["train_seconds"])
    if name.startswith("gpu") and (models / name / "model.safetensors").exists():
        key = h["heldout_v2_best_f1"] + h["heldout_v1_f1"]
        if best is None or key > best[0]:
            best = (key, name)
print("BEST", best[1] if best else None)
PY
cat $R/selection.txt
BEST=$(awk '/^BEST/{print $2}' $R/selection.txt)
if [ -n "$BEST" ] && [ "$BEST" != None ]; then
  split -b 15m $M/$BEST/model.safetensors $OUT/model.safetensors.part-
  tar czf $OUT/best_small.tgz -C $M/$BEST --exclude model.safetensors .
  OMP_NUM_THREADS=8 timeout 100 python3 eval/reader/int8_eval.py $M/$BEST $D/squad-v1.1/dev-v1.1.json 1000 8 > $R/int8_eval.log 2>&1
  OMP_NUM_THREADS=2 timeout 40 taskset -c 14,15 python3 eval/reader/latency.py $M/$BEST 30 2 > $R/latency_best.log 2>&1
fi
tar czf $OUT/runs.tgz -C $R .
grep -h "windows/s\|p50\|^none\|^int8" $R/*.log
ls -la $OUT
