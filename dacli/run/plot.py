"""``dacli plot``: PNG pictures of an analysis file. Returns the files written; prints nothing."""

from __future__ import annotations

from pathlib import Path

from dacli.errors import DataError, OutputError

SUFFIXES = ("hovmoller", "timeseries", "diagnostics")


def plot(analysis: Path, out: Path | None = None, point: int | None = None, overwrite: bool = False) -> dict[str, str]:
    """Write ``<out>_{hovmoller,timeseries,diagnostics}.png`` (out defaults to the file's path without .nc)."""
    from dacli.io import figures
    from dacli.io.netcdf import open_netcdf

    dataset = open_netcdf(analysis, "analysis")
    variables = [name[: -len("_analysis")] for name in dataset.data_vars
                 if name.endswith("_analysis") and f"{name[: -len('_analysis')]}_background" in dataset.data_vars]
    if not variables or "window_start" not in dataset:
        raise DataError(f"analysis file {analysis}: not a dacli analysis file (no <variable>_analysis and "
                        f"<variable>_background pair, or no window_start); data variables found: "
                        f"{', '.join(map(str, dataset.data_vars)) or 'none'}")
    dims = dataset[f"{variables[0]}_analysis"].dims
    if len(dims) > 2:
        raise DataError(f"analysis file {analysis}: {variables[0]}_analysis has dimensions {dims}; "
                        "dacli plot draws models on at most one grid dimension")
    grid = dims[1] if len(dims) == 2 else None
    size = dataset.sizes[grid] if grid else 1
    point = size // 2 if point is None else point
    if not 0 <= point < size:
        raise DataError(f"--point {point}: the grid {grid!r} has {size} points (0 .. {size - 1})")
    prefix = Path(out) if out is not None else Path(analysis).with_suffix("")
    if not prefix.parent.is_dir():
        raise OutputError(f"output folder {prefix.parent} does not exist")
    paths = {kind: prefix.parent / f"{prefix.name}_{kind}.png" for kind in SUFFIXES}
    kinds = [kind for kind in SUFFIXES if grid or kind != "hovmoller"]
    for kind in kinds:  # refuse before drawing anything
        if paths[kind].exists() and not overwrite:
            raise OutputError(f"output file {paths[kind]} exists; pass --overwrite to replace it")
    title = str(dataset.attrs.get("title", analysis))
    drawings = {
        "hovmoller": lambda: figures.hovmoller(dataset, variables, grid, title),
        "timeseries": lambda: figures.time_series(dataset, variables, grid, point, title),
        "diagnostics": lambda: figures.window_diagnostics(dataset, title),
    }
    return {kind: str(figures.save_figure(drawings[kind](), paths[kind], overwrite)) for kind in kinds}
