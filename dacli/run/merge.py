"""``dacli merge``: the analysis files of consecutive window ranges (job-array tasks) as one file."""

from __future__ import annotations

from pathlib import Path


def merge(output: str | Path, inputs: list[str | Path], *, overwrite: bool = False,
          command: str = "dacli merge") -> dict:
    """Merge ``inputs`` (:func:`dacli.io.merge.merge_analysis_files`) and write ``output`` atomically."""
    from dacli.io.merge import merge_analysis_files
    from dacli.io.netcdf import check_writable, write_netcdf_atomically

    check_writable(output, overwrite)
    merged = merge_analysis_files(inputs, command=command)
    write_netcdf_atomically(merged, output, overwrite)
    return {"output": str(output), "parts": [str(p) for p in inputs], "windows": int(merged.sizes["window"]),
            "times": int(merged.sizes["time"])}
