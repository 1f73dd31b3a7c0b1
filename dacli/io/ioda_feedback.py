"""Observation-space diagnostics ("feedback") as an IODA v3 file, the groups JEDI writes after a
run.

The same layout as :func:`dacli.io.ioda.ioda_tree` (root ``Location``, ``_ioda_layout``
attributes, ``MetaData/dateTime`` and coordinates), with, for every observed variable ``<var>``:

- ``ObsValue/<var>``, ``ObsError/<var>``: the observation and its error std;
- ``hofx0/<var>``: H(background), the model equivalent of the background;
- ``hofx1/<var>``: H(analysis), the model equivalent of the analysis;
- ``ombg/<var>``, ``oman/<var>``: observation minus background / minus analysis;
- ``EffectiveQC/<var>``: int32 quality flag, 0 = used (dacli's flags, :data:`QC_FLAGS`, named in
  ``flag_values`` / ``flag_meanings``);
- ``EffectiveError/<var>``: the error std used, missing where the observation was not used.

Several variables share ``Location``: each row belongs to one variable (``names``), and the
other variables' groups hold IODA's missing value there (as JEDI does in a combined ObsSpace).
One row per observation use: an observation used in several windows needs a row per window.

Not for: dacli's own CF feedback file (:mod:`dacli.io.feedback`), or model calendars that are not
real-world ones (IODA's dateTime is a real date; a :class:`ConfigError`).
Reference: JCSDA JEDI documentation (IODA file format, UFO quality-control flags and groups),
https://jointcenterforsatellitedataassimilation-jedi-docs.readthedocs-hosted.com/
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from dacli import __version__
from dacli.io.ioda import float_variable, int_variable, root_and_metadata
from dacli.io.metadata import Description, Discovery, describe
from dacli.io.observation_set import QC_FLAGS
from dacli.io.times import TimeAxis

GROUPS = ("ObsValue", "ObsError", "hofx0", "hofx1", "ombg", "oman", "EffectiveQC", "EffectiveError")


def feedback_tree(
    observations_values,
    errors,
    hofx_background,
    hofx_analysis,
    qc_flags,
    times,
    coordinates: dict[str, np.ndarray],
    names: str | Sequence[str],
    time_axis: TimeAxis,
    units: str | dict[str, str],
    *,
    attrs: dict | None = None,
    coordinate_units: dict[str, str] | None = None,
    discovery: Discovery | None = None,
) -> xr.DataTree:
    """The IODA v3 feedback of P observation uses (all arrays (P,), ``times`` in model time on
    ``time_axis``).

    ``names``: one variable name for all rows, or each row's (P,); ``units``: the model's units,
    one for all variables or per variable name. NaN (e.g. no H(x) for an unused observation)
    is written as IODA's missing value. ``discovery``: the ACDD-1.3 attributes of the root
    (:mod:`dacli.io.metadata`), with the time and place covered.
    """
    values = np.asarray(observations_values, dtype=float)
    if values.ndim != 1:
        raise ValueError(
            f"feedback_tree: observations_values has shape {values.shape}; expected (P,)"
        )
    size = values.size
    rows = (
        np.full(size, names, dtype=object)
        if isinstance(names, str)
        else np.asarray(names, dtype=object)
    )
    arrays = {
        "errors": errors,
        "hofx_background": hofx_background,
        "hofx_analysis": hofx_analysis,
        "qc_flags": qc_flags,
        "times": times,
        "names": rows,
        **coordinates,
    }
    for label, array in arrays.items():
        if np.shape(array) != (size,):
            raise ValueError(
                f"feedback_tree: {label} has shape {np.shape(array)}; expected ({size},) like "
                "observations_values"
            )
    errors = np.asarray(errors, dtype=float)
    background, analysis = (
        np.asarray(hofx_background, dtype=float),
        np.asarray(hofx_analysis, dtype=float),
    )
    flags = np.asarray(qc_flags)
    variables = list(dict.fromkeys(str(name) for name in rows))
    units_of = (lambda name: units) if isinstance(units, str) else units.__getitem__
    groups = root_and_metadata(
        np.asarray(times, float),
        time_axis,
        coordinates,
        {"title": "dacli observation-space diagnostics (IODA v3 feedback)", **(attrs or {})},
        coordinate_units,
    )
    content: dict[str, dict[str, xr.Variable]] = {group: {} for group in GROUPS}
    for name in variables:
        mine = rows == name
        unit = units_of(name)

        def only(data, mine=mine):
            return np.where(mine, data, np.nan)

        content["ObsValue"][name] = float_variable(only(values), unit)
        content["ObsError"][name] = float_variable(only(errors), unit)
        content["hofx0"][name] = float_variable(only(background), unit)
        content["hofx1"][name] = float_variable(only(analysis), unit)
        content["ombg"][name] = float_variable(only(values - background), unit)
        content["oman"][name] = float_variable(only(values - analysis), unit)
        content["EffectiveError"][name] = float_variable(
            np.where(mine & (flags == 0), errors, np.nan), unit
        )
        qc = int_variable(np.where(mine, flags, 0), missing=~mine)
        qc.attrs.update(
            {
                "long_name": "quality-control flag (0: used)",
                "flag_values": np.array(list(QC_FLAGS), np.int32),
                "flag_meanings": " ".join(QC_FLAGS.values()),
            }
        )
        content["EffectiveQC"][name] = qc
    for group in GROUPS:
        groups[f"/{group}"] = xr.Dataset(content[group])
    tree = xr.DataTree.from_dict(
        {key: groups[key] for key in ("/", *(f"/{g}" for g in GROUPS), "/MetaData")}
    )
    if discovery is None:
        return tree
    description = Description(
        f"Observation-space diagnostics (IODA v3 feedback) of {size} observation uses made by "
        f"dacli {__version__}: observations, errors, H(x) of the background (hofx0) and of the "
        "analysis (hofx1), departures (ombg, oman) and quality control (EffectiveQC).",
        ("data assimilation", "observation departures", "IODA", "JEDI"),
        "observation-space diagnostics of a variational analysis",
    )
    return describe(tree, discovery, description)
