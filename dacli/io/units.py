"""Physical units of every variable read: compared with the model's through cf-units (UDUNITS-2).

A file variable in units convertible to the model variable's (cm -> m, degC -> K, hPa -> Pa) is
converted and the conversion is reported; incompatible units (geopotential ``m2 s-2`` for a
height in ``m``) are a :class:`DataError` (exit 3) naming both. A variable without a ``units``
attribute is taken as it is, with a warning (CF asks for units on every dimensional variable).

Error standard deviations convert like differences: the scale only, never an offset
(an error of 1 degC is an error of 1 K).

Do not use this for time coordinates (:mod:`dacli.io.times` owns those) or grid coordinates
given in degrees (latitude and longitude are compared as numbers).
Reference: cf-units documentation; CF Conventions 1.11, section 3.1 "Units".
"""

from __future__ import annotations

import logging

import cf_units
import numpy as np

from dacli.errors import DataError

log = logging.getLogger("dacli")


def parse_units(text: str, where: str) -> cf_units.Unit:
    """``text`` as a cf-units Unit; a DataError naming ``where`` when UDUNITS cannot read it."""
    try:
        return cf_units.Unit(str(text))
    except ValueError:
        raise DataError(
            f"{where}: units {text!r} are not UDUNITS units (e.g. 'm', 'm s-1', 'K', '1')"
        ) from None


def to_model_units(
    values: np.ndarray, found: str | None, expected: str, where: str, *, difference: bool = False
) -> tuple[np.ndarray, str | None]:
    """(``values`` in the ``expected`` units, a note of what was done or None).

    ``found`` is the file's ``units`` attribute (None: missing, a warning is logged and the
    values are kept); ``difference=True`` converts a spread (error std): scale only.
    """
    values = np.asarray(values, dtype=float)
    if found is None:
        log.warning(
            "%s: no 'units' attribute; taken to be in the model's units (%s)", where, expected
        )
        return values, None
    source, target = (
        parse_units(found, where),
        parse_units(expected, f"the model's units of {where}"),
    )
    if source == target:
        return values, None
    if not source.is_convertible(target):
        raise DataError(
            f"{where}: units {found!r} cannot be converted to the model variable's units "
            f"{expected!r} "
            "(a different physical quantity); map the right variable with names = { ... } or "
            "convert "
            "the file"
        )
    if difference:
        converted = source.convert(values, target) - source.convert(np.zeros_like(values), target)
    else:
        converted = source.convert(values, target)
    return np.asarray(converted, dtype=float), f"{where}: converted from {found!r} to {expected!r}"
