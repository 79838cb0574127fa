#!/bin/bash
# Issue 19, second technical run: unseen wordings for held-out documents, prose replay 10,000.
cd /work/main
RUN=/work/runs/reader-19b
RESUME=""; [ -f $RUN/checkpoint.pt ] && RESUME="--resume"
exec .venv/bin/rag train-reader --data-dir ../shared/data --preset continue --techdocs /work/techdocs/questions.jsonl \
  --max-questions 10000 --epochs 1 --max-steps 0 --lr 5e-5 --heldout-fraction 0.06 --calibration-limit 800 \
  --unanswerable-share 0.2 --real-use-k 5 --precision bf16 --no-dev-reports --save-every 50 \
  --run-dir $RUN --output-dir $RUN/model $RESUME
