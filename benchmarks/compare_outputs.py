"""Compare two output trees of benchmarks/output_identity.sh, variable for variable.

    python benchmarks/compare_outputs.py BEFORE AFTER

NetCDF files: same variables, dimensions, dtypes, values (bit for bit, NaN = NaN) and
attributes, except the attributes that record when and how long (history, date_created,
date_modified, timings inside the provenance JSON). Other files (CSV, .eqx, TOML snippets):
bytes, except lines with timings. Prints one line per file and exits 1 on any difference.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import xarray as xr

VOLATILE_ATTRIBUTES = {"history", "date_created", "date_modified", "date_issued", "date_metadata_modified"}
VOLATILE_KEYS = ("seconds", "device", "time_created", "hostname", "host", "pid", "date", "jax_version")


def _clean(value):
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if not any(word in k for word in VOLATILE_KEYS)}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _attribute(value):
    if isinstance(value, str) and value.startswith("{"):
        try:
            return _clean(json.loads(value))
        except json.JSONDecodeError:
            return value
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


ROOTS: list[str] = []  # the two trees' folders: paths inside attributes are compared relative to them


def _relative(text: str) -> str:
    for root in sorted(ROOTS, key=len, reverse=True):  # the longer first: one may prefix the other
        text = text.replace(root + "/", "<root>/")
    return text


def _attributes(attrs):
    """Attributes as comparable text (NaN equals NaN; paths relative to the tree)."""
    return {k: _relative(repr(_attribute(v))) for k, v in attrs.items() if k not in VOLATILE_ATTRIBUTES}


def compare_netcdf(before: Path, after: Path) -> list[str]:
    problems = []
    with xr.open_dataset(before, decode_cf=False) as a, xr.open_dataset(after, decode_cf=False) as b:
        if set(a.variables) != set(b.variables):
            problems.append(f"variables differ: {sorted(set(a.variables) ^ set(b.variables))}")
        left, right = _attributes(a.attrs), _attributes(b.attrs)
        keys = {k for k in set(left) | set(right) if left.get(k) != right.get(k)}
        if keys:
            problems.append(f"global attributes differ: {sorted(keys)}")
        for name in sorted(set(a.variables) & set(b.variables)):
            va, vb = a[name], b[name]
            if va.dims != vb.dims or va.dtype != vb.dtype:
                problems.append(f"{name}: dims/dtype {va.dims} {va.dtype} vs {vb.dims} {vb.dtype}")
                continue
            x, y = va.values, vb.values
            same = np.array_equal(x, y, equal_nan=x.dtype.kind == "f")
            if not same:
                diff = np.nanmax(np.abs(x.astype(float) - y.astype(float))) if x.dtype.kind in "fiu" else "n/a"
                problems.append(f"{name}: values differ (max |diff| {diff})")
            if _attributes(va.attrs) != _attributes(vb.attrs):
                problems.append(f"{name}: attributes differ")
    return problems


def compare_text(before: Path, after: Path) -> list[str]:
    if path_is_json(before):
        a = _clean(json.loads(_relative(before.read_text())))
        b = _clean(json.loads(_relative(after.read_text())))
        if a == b:
            return []
        keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k)) if isinstance(a, dict) else []
        return [f"JSON differs: {keys}"]
    def lines(path):
        return [line for line in path.read_bytes().splitlines() if b"second" not in line and b"time" not in line]
    return [] if lines(before) == lines(after) else ["content differs"]


def path_is_json(path: Path) -> bool:
    return path.suffix == ".out" and path.read_text().lstrip().startswith("{")


def main(before: str, after: str) -> int:
    before_root, after_root = Path(before), Path(after)
    ROOTS.extend([str(before_root.resolve()), str(after_root.resolve())])
    failed = 0
    for path in sorted(before_root.rglob("*")):
        relative = path.relative_to(before_root)
        if path.is_dir() or relative.parts[0] == "sample_data" or path.suffix in (".log", ".toml"):
            continue
        other = after_root / relative
        if not other.exists():
            print(f"MISSING {relative}")
            failed += 1
            continue
        problems = compare_netcdf(path, other) if path.suffix == ".nc" else compare_text(path, other)
        print(("SAME    " if not problems else "DIFFERS ") + str(relative) + "".join(f"\n        {p}" for p in problems))
        failed += bool(problems)
    for path in sorted(after_root.rglob("*")):
        relative = path.relative_to(after_root)
        if path.is_file() and not (before_root / relative).exists() and relative.parts[0] != "sample_data" \
                and path.suffix not in (".log",):
            print(f"NEW     {relative}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
