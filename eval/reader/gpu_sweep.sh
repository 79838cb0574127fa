#!/usr/bin/env bash
# One device call: train several reader configs in parallel on one GPU (MiniLM-L6 is launch-bound,
# so parallel processes share the GPU well), pick the best on the HELD-OUT TRAINING slice
# (heldout_v2_best_f1, never on SQuAD dev), return its fp16 weights in <16 MiB parts plus all logs.
# Usage (repo root, data + fp16 base model copied to .gpudata/): bash eval/reader/gpu_sweep.sh OUTDIR
set -u
OUT=${1:-${OUT:-/tmp/out}}
D=.gpudata
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=true OMP_NUM_THREADS=3
R=/tmp/runs; M=/tmp/models; mkdir -p $R $M $OUT
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch, transformers; print(torch.__version__, transformers.__version__)"
run() {  # name, then extra args
  local name=$1; shift
  timeout ${LIMIT:-500} python -m rag.training --data-dir $D --base-model $D/base \
    --run-dir $R/$name --output-dir $M/$name "$@" > $R/$name.log 2>&1
  echo "$name exit $?"
}
run gpu_lr1e-4 --preset gpu --lr 1e-4 &
run gpu_lr2e-4 --preset gpu --lr 2e-4 &
run gpu_lr5e-5 --preset gpu --lr 5e-5 &
run gpu_lr1e-4_neg0.5 --preset gpu --lr 1e-4 --neg-ratio 0.5 &
run cpu_preset --preset cpu &
wait
python3 - "$R" "$M" > $R/selection.txt <<'PY'
import json, sys, pathlib
runs, models = map(pathlib.Path, sys.argv[1:])
best = None
for m in sorted(runs.glob("*/metrics.json")):
    d = json.loads(m.read_text()); name = m.parent.name
    h = d["history"][-1]
    print(name, "heldout", h, "v1dev", d.get("squad_v1.1_dev", {}).get("v1_always_answer"),
          "v2dev", d.get("squad_v2.0_dev", {}).get("v2_at_heldout_threshold"), "train_s", d["train_seconds"])
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
fi
[ -f $M/cpu_preset/model.safetensors ] && tar czf $OUT/cpu_small.tgz -C $M/cpu_preset --exclude model.safetensors .
tar czf $OUT/runs.tgz -C $R .
ls -la $OUT
