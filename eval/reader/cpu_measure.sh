#!/usr/bin/env bash
# CPU measurements on pinned pairs of cores (2 threads each): training throughput of the cpu preset,
# reader latency (5 passages) fp32 vs int8, and fp32 vs int8 F1 on 1000 SQuAD v1.1 dev questions.
# Usage: bash eval/reader/cpu_measure.sh MODEL_DIR DATA_DIR
M=$1; D=$2
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD OMP_NUM_THREADS=2
lscpu | grep "Model name"
taskset -c 0,1 python3 eval/reader/cpu_throughput.py cpu 15 $D $M 2>&1 | grep windows/s &
taskset -c 2,3 python3 eval/reader/int8_eval.py $M $D/squad-v1.1/dev-v1.1.json 1000 2 2>&1 | grep "^none\|^int8" &
taskset -c 4,5 python3 eval/reader/latency.py $M 50 2 2>&1 | grep p50 &
wait
