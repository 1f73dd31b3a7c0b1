#!/usr/bin/env bash
# Set up the benchmark's own Python environment: DAPPER (from PyPI) and dacli (this checkout,
# editable, or one commit of it) in ONE venv, so one process runs both on the same observations; then apply the
# two-line fix DAPPER 1.7.1's Var4D needs to run at all (see README.md, "DAPPER patch").
#
#   benchmarks/setup_dapper.sh                 # venv at /work/bench-venv (default), dacli editable
#   BENCH_VENV=/some/where benchmarks/setup_dapper.sh
#   BENCH_VENV=/work/bench-venv-pinned DACLI_REF=<commit> benchmarks/setup_dapper.sh
#                                              # dacli as committed at <commit> (git archive, not
#                                              # editable): benchmark a commit while the tree changes
#
# The patch edits ONLY the installed copy of dapper/da_methods/variational.py inside that venv;
# no DAPPER code is copied into this repository. Idempotent: re-running is safe.
set -euo pipefail

VENV="${BENCH_VENV:-/work/bench-venv}"
PYTHON_BIN="${PYTHON:-python3}"
DAPPER_VERSION="${DAPPER_VERSION:-1.7.1}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON_BIN" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --upgrade pip
fi
"$VENV/bin/pip" install --quiet "dapper==$DAPPER_VERSION"
if [ -n "${DACLI_REF:-}" ]; then
    COMMIT="$(git -C "$REPO" rev-parse --short "$DACLI_REF")"
    SRC="$(mktemp -d)"
    git -C "$REPO" archive "$COMMIT" | tar -x -C "$SRC"
    "$VENV/bin/pip" install --quiet --force-reinstall --no-deps "$SRC"
    "$VENV/bin/pip" install --quiet "$SRC"          # its dependencies
    rm -rf "$SRC"
    echo "$COMMIT" > "$VENV/dacli-ref.txt"          # read by lorenz96_dapper.py for the report
else
    "$VENV/bin/pip" install --quiet -e "$REPO"
    rm -f "$VENV/dacli-ref.txt"
fi

# Locate the installed file without importing dapper (its import prints config warnings).
TARGET="$("$VENV/bin/python" - <<'EOF'
import importlib.util, pathlib
spec = importlib.util.find_spec("dapper")
print(pathlib.Path(spec.submodule_search_locations[0]) / "da_methods" / "variational.py")
EOF
)"

# DAPPER 1.7.1, Var4D.assimilate: `Obs = HMM.Obs(ko)` is already the Operator of observation
# ko, but the next lines call it with ko again -- `Obs(ko).linear(x)` and `Obs(ko)(x)` -- i.e.
# they apply the observation operator to the integer ko and then call the result: IndexError.
# The fix applies the operator to the state, as iEnKS does:
#     Y = Obs(ko).linear(x) @ X   ->   Y = Obs.linear(x) @ X
#     xo = Obs(ko)(x)             ->   xo = Obs(x)
if grep -q 'Obs(ko).linear(x) @ X' "$TARGET" || grep -q 'xo = Obs(ko)(x)' "$TARGET"; then
    cp -n "$TARGET" "$TARGET.orig" || true
    sed -i \
        -e 's/Y = Obs(ko)\.linear(x) @ X/Y = Obs.linear(x) @ X/' \
        -e 's/xo = Obs(ko)(x)/xo = Obs(x)/' \
        "$TARGET"
    echo "patched Var4D in $TARGET (original kept as variational.py.orig)"
else
    echo "Var4D already patched (or changed upstream) in $TARGET"
fi
grep -q 'Y = Obs.linear(x) @ X' "$TARGET" && grep -q 'xo = Obs(x)' "$TARGET" || {
    echo "error: could not verify the Var4D fix in $TARGET" >&2
    exit 1
}
"$VENV/bin/python" - <<'EOF'
from importlib.metadata import version
for name in ("dapper", "dacli", "jax", "jaxlib", "numpy", "scipy", "diffrax", "optimistix", "xarray"):
    print(f"{name:11s} {version(name)}")
EOF
