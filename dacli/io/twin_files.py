"""Discovery metadata (ACDD-1.3) of the twin-experiment files ``dacli simulate`` writes.

The truth run, the background (the truth at the first time plus a background error) and the
synthetic observations (the truth plus observation noise: gridded, CF points or IODA v3) each get
a title naming what they hold, a summary generated from the experiment, keywords and the ISO
19115-1 content of their variables (all computed from the model: model results; the error
standard deviations: quality information), then the attributes :func:`dacli.io.metadata.describe`
adds. Not for the files of ``dacli assimilate`` or ``dacli forecast`` (their own writers).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import xarray as xr

from dacli import __version__
from dacli.io.metadata import Description, Discovery, describe
from dacli.io.times import TimeAxis
from dacli.layout import StateLayout

# kind -> (what the file holds, a sentence on how it was made)
TWIN_FILES = {
    "truth": ("truth run", "the model run from a spun-up state (the truth of the experiment)"),
    "background": (
        "background",
        "the truth at the first time plus a random background error",
    ),
    "observations": (
        "synthetic observations",
        "the truth at the observation times and places plus Gaussian observation noise",
    ),
}


@dataclass(frozen=True)
class TwinExperiment:
    """What simulate's files describe: the model's grid and name, its time axis, the seed."""

    layout: StateLayout
    time_axis: TimeAxis
    model: str
    seed: int


def twin_file(data, kind: str, discovery: Discovery, experiment: TwinExperiment):
    """``data`` (a Dataset, or an IODA tree) of simulate's ``kind`` file, described (ACDD).

    Observed model variables get their CF standard name, their error standard deviations the
    same with CF's ``standard_error`` modifier (CF-1.11 Appendix C); a time coordinate without a
    ``long_name`` gets the time axis's."""
    layout, model, seed = experiment.layout, experiment.model, experiment.seed
    variables = getattr(data, "data_vars", {})
    for name in layout.variables:
        standard_name = layout.standard_name(name)
        if standard_name and name in variables:
            variables[name].attrs.setdefault("standard_name", standard_name)
        if standard_name and f"{name}_error" in variables:
            variables[f"{name}_error"].attrs.setdefault(
                "standard_name", f"{standard_name} standard_error"
            )
    if isinstance(data, xr.Dataset) and "time" in data.variables:
        data["time"].attrs.setdefault("long_name", experiment.time_axis.long_name)
    what, how = TWIN_FILES[kind]
    description = Description(
        f"Twin experiment of the {model} model made by dacli {__version__} simulate (seed "
        f"{seed}): the {what}, {how}.",
        ("data assimilation", "twin experiment", "synthetic data", model),
        f"synthetic {what} (twin experiment)",
        content={
            str(name): "qualityInformation"
            for name in getattr(data, "data_vars", ())
            if str(name).endswith("_error")
        },
    )
    return describe(data, replace(discovery, title=f"{discovery.title}: {what}"), description)
