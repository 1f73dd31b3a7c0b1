#!/usr/bin/env bash
# Runs every shipped config through the commands that write files, in a scratch copy of configs/
# and sample_data/, so two checkouts' outputs can be compared variable for variable
# (benchmarks/compare_outputs.py). Used to show that a refactoring changed no output.
#
#   bash benchmarks/output_identity.sh OUTDIR      # with the dacli of the active environment
set -u
out=$(realpath -m "$1"); mkdir -p "$out"; repo=$(cd "$(dirname "$0")/.." && pwd)
rm -rf "$out/configs" "$out/sample_data"; cp -r "$repo/configs" "$repo/sample_data" "$out/"
cd "$out/configs" || exit 1
run() {  # stdout (the --json summary) to NAME.out, stderr (logs) to NAME.log
  local name t=$SECONDS; name=$out/$(echo "$*" | tr ' /="' '____' | cut -c1-80)
  echo "== $*"; "$@" >"$name.out" 2>"$name.log"; echo "   rc=$? $((SECONDS-t)) s"
}
for c in lorenz63 lorenz96 lorenz96_3dfgat lorenz96_3dvar lorenz96_imperfect lorenz96_incremental \
         lorenz96_weak qg qg_ioda qg_nonlinear; do
  run dacli assimilate $c.toml --overwrite --json
done
run dacli train lorenz63_4dvarnet.toml --json
run dacli assimilate lorenz63_4dvarnet.toml --overwrite --json
run dacli train lorenz96_tune.toml --json
run dacli forecast lorenz96.toml --lead-time 1.0 --from lorenz96_analysis.nc --members 3 --overwrite --json
run dacli assimilate lorenz96.toml --set window.select=0:20 --set output.path=part1.nc --overwrite
run dacli assimilate lorenz96.toml --set window.select=20:50 --set output.path=part2.nc --set 'background.path="part1.nc"' --overwrite
run dacli merge -o merged.nc part1.nc part2.nc --overwrite
run dacli sweep lorenz96.toml --set window.select=0:5 --values background.covariance.std=0.5,1,2 --out sweep.csv --overwrite
mkdir -p sim/configs sim/sample_data && cp lorenz96.toml qg_ioda.toml sim/configs/ \
  && (cd sim/configs && run dacli simulate lorenz96.toml --overwrite && run dacli simulate qg_ioda.toml --overwrite)
run dacli check-adjoints lorenz63.toml --json
