"""Merging analysis files written for consecutive window ranges into the file of the whole run.

Several processes (Slurm tasks) each assimilate a contiguous range of windows and write their
own analysis file (:mod:`dacli.parallel.distributed`); this puts them back together. The parts
must come from the same configuration (apart from :data:`PER_PART_KEYS`) and cover consecutive
windows: no gap, no overlap. Along ``time`` each part's last window reaches its window end,
which is the next part's first time (or beyond it, with overlapping windows): those trailing
times are dropped, so the merged trajectory takes every time from the window that a single
run would have taken it from. Per-window variables are concatenated along ``window``.

Whole-run statistics in the global attributes: the per-window counts (windows, converged windows,
observations used and rejected) are summed; the counts over the whole observation file and
schedule (outside every window, outside the domain, PreQC, duplicates) are the same in every
part and kept; the Desroziers statistics cannot be rebuilt from the files (they need every
observation) and are dropped. ``dacli_config`` is the whole run's: no ``window.select``, the
merged file as ``output.path``. ``history`` gets one line; ``dacli_merged_from`` names the parts.
The discovery attributes (:mod:`dacli.io.metadata`) describe the union: dates of the merge, the
time and geospatial coverage of the merged data, and the generated summary of the whole run.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from dacli.errors import DataError
from dacli.io.analysis import analysis_summary, without_fill_on_coordinates
from dacli.io.metadata import now_iso, redescribed
from dacli.io.netcdf import open_netcdf
from dacli.io.times import TimeAxis

log = logging.getLogger("dacli")

# Dotted config keys that change no number of a run (how it is written, stopped, cached).
NEUTRAL_KEYS = ("output.overwrite", "run.stop_signal", "run.compilation_cache")
# ... and those that may also differ between the parts of one run (where each part is written, its
# range).
PER_PART_KEYS = (
    *NEUTRAL_KEYS,
    "output.path",
    "output.observation_diagnostics",
    "window.count",
    "window.select",
    "background.path",
    "run.windows_per_chunk",
    "run.minimiser_steps_per_chunk",
)

# Global attributes that are per-part counts: summed.
SUMMED_ATTRIBUTES = (
    "dacli_windows",
    "dacli_converged_windows",
    "dacli_observations_used",
    "dacli_observations_rejected",
)
# Global attributes that count over the whole observation file or the whole run's schedule (every
# part states the same number): kept when the parts agree, dropped with a warning otherwise.
COMMON_ATTRIBUTES = (
    "dacli_observations_outside_windows",
    "dacli_observations_outside_domain",
    "dacli_observations_rejected_preqc",
    "dacli_observations_duplicate",
)
# Statistics of one part that are wrong for the whole run: the Desroziers estimates and the time
# averages after a burn-in (each part would count its own first windows as burn-in).
DROPPED_PREFIXES = ("dacli_desroziers_", "dacli_time_average_")


def flat_keys(tree: dict, prefix: str = "") -> dict:
    """A nested dict (a dumped config) as {dotted key: value}."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flat_keys(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _run_config(dataset: xr.Dataset, path: Path) -> dict:
    """The file's dacli config, flattened to dotted keys, without :data:`PER_PART_KEYS`."""
    if (
        "dacli_config" not in dataset.attrs
        or "window_start" not in dataset
        or "time" not in dataset.dims
    ):
        raise DataError(
            f"analysis file {path}: not a dacli analysis file (no dacli_config attribute, "
            "window_start variable or time dimension)"
        )
    try:
        config = flat_keys(json.loads(dataset.attrs["dacli_config"]))
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"analysis file {path}: unreadable dacli_config attribute ({exc})"
        ) from None
    return {key: value for key, value in config.items() if key not in PER_PART_KEYS}


def _window_shift(config: dict) -> float:
    shift = config.get("window.shift")
    return float(config["window.length"] if shift is None else shift)


def merge_analysis_files(
    paths: Sequence[str | Path], command: str = "dacli merge", output: str | Path | None = None
) -> xr.Dataset:
    """One analysis dataset from files of consecutive window ranges of the same run (in any order).

    Raises :class:`DataError` naming the file that is not an analysis file, comes from another
    configuration, or leaves a gap or an overlap in the windows. ``output`` (the merged file's
    path) goes into the merged ``dacli_config``.
    """
    if not paths:
        raise DataError("merge: no analysis files given")
    parts = []
    for path in map(Path, paths):
        dataset = open_netcdf(path, "analysis")
        parts.append((path, dataset, _run_config(dataset, path)))
    first_path, _, config = parts[0]
    for path, _, other in parts[1:]:
        differing = sorted(
            key for key in config.keys() | other.keys() if config.get(key) != other.get(key)
        )
        if differing:
            raise DataError(
                f"analysis file {path}: written with another configuration than {first_path} "
                f"(differs in {', '.join(differing[:5])}{', ...' if len(differing) > 5 else ''}); "
                "only parts of one run can be merged"
            )
    parts.sort(key=lambda part: float(part[1]["window_start"][0]))
    shift = _window_shift(config)
    tolerance = 1e-6 * min(shift, config.get("model.dt") or shift)
    trimmed = []
    for (path, dataset, _), (next_path, following, _) in itertools.pairwise(parts):
        expected = float(dataset["window_start"][-1]) + shift
        found = float(following["window_start"][0])
        if abs(found - expected) > tolerance:
            kind = "overlaps" if found < expected else "leaves a gap after"
            raise DataError(
                f"analysis file {next_path}: its first window starts at {found:g}, the window "
                f"after the last of {path} starts at {expected:g}: it {kind} {path}; merge "
                "consecutive window ranges of one run"
            )
        keep = dataset["time"].values < float(following["time"][0]) - tolerance
        trimmed.append(dataset.isel(time=np.flatnonzero(keep)))
    trimmed.append(parts[-1][1])

    variables = {}
    for name in _merged_variables(parts[0][1]):
        pieces = [dataset[name] for dataset in trimmed]
        dim = (
            "time" if "time" in pieces[0].dims else "window" if "window" in pieces[0].dims else None
        )
        variables[name] = (
            pieces[0]
            if dim is None
            else xr.concat(pieces, dim=dim, coords="minimal", compat="override", join="exact")
        )
    merged = xr.Dataset(
        variables,
        attrs=_merged_attributes(
            [part[1] for part in parts], [part[0] for part in parts], command, output
        ),
    )
    for variable in merged.variables.values():
        variable.encoding = {}
    return redescribed(without_fill_on_coordinates(merged), _summary(merged))


def _merged_variables(dataset: xr.Dataset) -> list[str]:
    """The variables to put together: the data variables and the window's coordinates
    (``window_start``, ``window_end``: data variables in files of dacli before 0.2)."""
    extra = [str(name) for name in dataset.coords if name not in dataset.dims]
    return [*map(str, dataset.data_vars), *(name for name in extra if name not in dataset.dims)]


def _summary(merged: xr.Dataset) -> str | None:
    """The merged run's generated summary (None: keep the parts', which a user wrote)."""
    attrs = merged.attrs
    config = json.loads(attrs["dacli_config"])
    if config.get("output", {}).get("summary"):
        return None
    time = merged["time"]
    axis = TimeAxis(time.attrs["units"], time.attrs.get("calendar", "standard"))
    provenance = {
        key[len("dacli_") :]: value for key, value in attrs.items() if key[:6] == "dacli_"
    }
    return analysis_summary(provenance, merged.sizes["window"], time.values, axis)


def _merged_attributes(
    datasets: list[xr.Dataset], paths: list[Path], command: str, output: str | Path | None
) -> dict:
    """The first part's attributes with the whole run's counts, configuration and history."""
    attrs = {
        key: value
        for key, value in datasets[0].attrs.items()
        if not key.startswith(DROPPED_PREFIXES)
    }
    for key in SUMMED_ATTRIBUTES:
        if all(key in dataset.attrs for dataset in datasets):
            attrs[key] = sum(int(dataset.attrs[key]) for dataset in datasets)
    for key in COMMON_ATTRIBUTES:
        values = {int(dataset.attrs[key]) for dataset in datasets if key in dataset.attrs}
        if len(values) > 1:
            log.warning(
                "merge: the parts disagree on %s (%s; files written by an older dacli count per "
                "range): left out of the merged file",
                key,
                ", ".join(map(str, sorted(values))),
            )
            attrs.pop(key, None)
    config = json.loads(attrs["dacli_config"])
    config["window"]["select"] = None
    if output is not None:
        config["output"]["path"] = str(output)
    attrs["dacli_config"] = json.dumps(config)
    names = ", ".join(str(path) for path in paths)
    attrs["history"] = (
        f"{attrs.get('history', '')}\n{now_iso()}: {command} ({len(paths)} files: {names})"
    ).lstrip("\n")
    attrs["dacli_merged_from"] = names
    return attrs
