"""``dacli merge``: the analysis files of consecutive window ranges (job-array tasks) as one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dacli.errors import ConfigError
from dacli.io.merge import merge_analysis_files
from dacli.io.netcdf import check_writable, write_netcdf_atomically


@dataclass(frozen=True)
class MergeResult:
    """The merged file (the ``--json`` summary, in this order)."""

    output: str
    parts: tuple[str, ...]
    windows: int
    times: int


def merge(
    output: str | Path,
    inputs: list[str | Path],
    *,
    overwrite: bool = False,
    command: str = "dacli merge",
) -> MergeResult:
    """Merge ``inputs`` (:func:`dacli.io.merge.merge_analysis_files`); write ``output`` atomically.

    Refuses fewer than two parts and an output that is one of the parts (``--overwrite`` would
    otherwise replace a part with the merge of the others).
    """
    if len(inputs) < 2:
        raise ConfigError(
            [
                f"merge: needs at least two analysis files to merge, found {len(inputs)} "
                f"({', '.join(map(str, inputs)) or 'none'})"
            ]
        )
    target = Path(output).resolve()
    for part in inputs:
        if Path(part).resolve() == target:
            raise ConfigError(
                [
                    f"merge: the output {output} is also one of the parts to merge; write the "
                    "merged file under another name"
                ]
            )
    check_writable(output, overwrite)
    merged = merge_analysis_files(inputs, command=command, output=output)
    write_netcdf_atomically(merged, output, overwrite)
    return MergeResult(
        str(output),
        tuple(str(p) for p in inputs),
        int(merged.sizes["window"]),
        int(merged.sizes["time"]),
    )
