#!/usr/bin/env bash
# Issue 19, item 4: does capturing the minimiser's while-loop bodies as CUDA graphs cut the
# per-iteration launch cost that keeps QG flat at 2.3-3.0 s per window on an H100
# (benchmarks/QG.md)? The same QG grid-suite cases (incremental 4DVar, RecursiveCheckpointAdjoint,
# 2-day windows, 3 windows: the first compiles, two are timed) run twice, each case in a fresh
# process (XLA reads XLA_FLAGS once, when its backend starts):
#
#   default  XLA's default command buffers. In XLA's debug_options_flags.cc (one stored version, not
#            checked against jaxlib 0.10.2): FUSION, CUBLAS, CUBLASLT, CUSTOM_CALL, CUDNN, graphs of
#            at least 5 commands; while loops and conditionals not captured. The result files
#            record the flags each run was given, not XLA's defaults.
#   graphs   --xla_gpu_enable_command_buffer=FUSION,CUBLAS,CUBLASLT,CUDNN,CUSTOM_CALL,WHILE,CONDITIONAL
#            --xla_gpu_graph_min_graph_size=1   (while-loop bodies and conditionals captured too)
#
# then writes the side-by-side table (qg.py --compare: ratios to the default run). The result
# files record the device, JAX's version and the flags (qg.py's provenance: environment).
#
# One device call, prepared for a session that is lent a GPU:
#   bash benchmarks/gpu_command_buffers.sh                     # grids 256, 512, 1024
#   SIZES=256,1024 bash benchmarks/gpu_command_buffers.sh      # less device time
# Smoke test of the plumbing on a CPU (the GPU flags are parsed there too, and do nothing):
#   DEVICE=cpu SIZES=32 QUICK=--quick bash benchmarks/gpu_command_buffers.sh
set -euo pipefail
cd "$(dirname "$0")/.."

device=${DEVICE:-gpu}
sizes=${SIZES:-256,512,1024}
data=${DATA:-/tmp/qg-command-buffers}
out=${OUT:-benchmarks/results}
quick=${QUICK:-}
graphs="--xla_gpu_enable_command_buffer=FUSION,CUBLAS,CUBLASLT,CUDNN,CUSTOM_CALL,WHILE,CONDITIONAL"
graphs="$graphs --xla_gpu_graph_min_graph_size=1"
run=(python benchmarks/qg.py --suites grid --sizes "$sizes" --data "$data" $quick)

# The twin experiments once, on the device that runs the cases (as benchmarks/QG.md's GPU runs).
"${run[@]}" --simulate-only --sim-device "$device"
XLA_FLAGS="" "${run[@]}" --device "$device" --sim-device "$device" \
    --label "$device, default command buffers" --out "$out/qg_${device}_command_buffers_default"
XLA_FLAGS="$graphs" "${run[@]}" --device "$device" --sim-device "$device" \
    --label "$device, while-loop graphs" --out "$out/qg_${device}_command_buffers_graphs"
python benchmarks/qg.py --compare "$out/qg_${device}_command_buffers_default.json" \
    "$out/qg_${device}_command_buffers_graphs.json" --out "$out/qg_${device}_command_buffers.md"
