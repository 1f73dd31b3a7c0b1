"""The model's time axis, and every input file's CF times converted to it.

Model time is a number of ``units`` (a CF ``"<unit> since <epoch>"``) in a CF ``calendar``:
``[time] units`` and ``[time] calendar`` of the config, one place for the whole run. Every time
coordinate read from a file is decoded with *its own* ``units`` and ``calendar`` attributes
(cftime, CF-1.11 section 4.4) and converted to model time:

- the same calendar (or an alias of it: ``gregorian`` = ``standard``, ``365_day`` = ``noleap``,
  ``366_day`` = ``all_leap``): only the unit and epoch change;
- between real-world calendars (``standard``, ``proleptic_gregorian``, ``julian``) the same
  instant is kept (cftime's ``change_calendar``, by Julian day): 2015-01-01 in the julian
  calendar is 2015-01-14 in the standard one — never a relabelling;
- any other pair (``noleap`` vs ``standard``, ``360_day`` vs anything else) has no such
  conversion and is refused.

Conversions are affine in the stored numbers (a unit is a fixed length of time in every CF
calendar that cftime decodes), so they are computed once from the file's epoch and applied to
the whole array; both ends of the array are checked against a full cftime decoding.

Do not use this for durations (``dt``, lead times): those are plain numbers of the model's unit.

Dimensionless model times (the Lorenz models') are written with CF time units too, so that every
CF tool reads them; their ``long_name`` (:attr:`TimeAxis.long_name`, ``[time] long_name``) says
that the dates carry no physical meaning (:func:`dimensionless_label`).
Reference: CF Conventions 1.11, section 4.4 "Time Coordinate"; cftime documentation.
"""

from __future__ import annotations

from dataclasses import dataclass

import cftime
import numpy as np

from dacli.errors import DataError

# CF calendars (CF-1.11 4.4.1) and their canonical names
CALENDARS = {
    "standard": "standard",
    "gregorian": "standard",
    "proleptic_gregorian": "proleptic_gregorian",
    "julian": "julian",
    "noleap": "noleap",
    "365_day": "noleap",
    "all_leap": "all_leap",
    "366_day": "all_leap",
    "360_day": "360_day",
}
REAL_WORLD = {"standard", "proleptic_gregorian", "julian"}
DEFAULT_CALENDAR = (
    "standard"  # CF: a time coordinate without a calendar attribute is in the standard calendar
)


def canonical_calendar(calendar: str) -> str:
    """The canonical CF name of ``calendar`` (case-insensitive); ValueError listing the CF
    calendars."""
    name = str(calendar).strip().lower()
    if name not in CALENDARS:
        raise ValueError(
            f"unknown calendar {calendar!r}; CF calendars are {', '.join(sorted(CALENDARS))}"
        )
    return CALENDARS[name]


def check_time_units(units: str, calendar: str) -> tuple[str, str]:
    """(unit word, epoch) of a CF time ``units`` string, checked with cftime in ``calendar``;
    ValueError else."""
    text = str(units).strip()
    unit, since, epoch = text.partition(" since ")
    if not since or not unit.strip() or not epoch.strip():
        raise ValueError(
            f"{units!r} is not a CF time unit of the form '<unit> since <date>' "
            "(e.g. 'days since 2000-01-01 00:00:00')"
        )
    try:
        cftime.num2date(0.0, text, canonical_calendar(calendar))
    except (ValueError, TypeError, OverflowError) as exc:
        raise ValueError(
            f"{units!r} (calendar {calendar!r}) cannot be decoded by cftime: {exc}"
        ) from None
    return unit.strip(), epoch.strip()


def dimensionless_label(units: str) -> str:
    """The ``long_name`` of a dimensionless model time written with the CF time ``units``.

    E.g. 'dimensionless model time (one model time unit written as one day since 2000-01-01
    00:00:00)': the file stays CF time (xarray and the checkers decode it) and says what it is.
    """
    unit, since, epoch = str(units).strip().partition(" since ")
    singular = unit.strip()[:-1] if unit.strip().endswith("s") else unit.strip()
    return (
        f"dimensionless model time (one model time unit written as one {singular} "
        f"since {epoch.strip()})"
    )


@dataclass(frozen=True)
class TimeAxis:
    """The model's time axis: numbers of ``units`` (CF '<unit> since <epoch>') in ``calendar``;
    ``long_name`` labels the time coordinates written on it."""

    units: str = "days since 2000-01-01 00:00:00"
    calendar: str = DEFAULT_CALENDAR
    long_name: str = "time"

    def __post_init__(self):
        object.__setattr__(self, "calendar", canonical_calendar(self.calendar))
        check_time_units(self.units, self.calendar)

    @property
    def unit(self) -> str:
        """The unit word (days, hours, ...): the unit of model.dt, window lengths and lead times."""
        return check_time_units(self.units, self.calendar)[0]

    def attributes(self) -> dict[str, str]:
        """CF attributes of a time variable on this axis (``units_metadata``: CF-1.11 4.4.3,
        for the real-world calendars; model times count no leap seconds)."""
        attrs = {"units": self.units, "calendar": self.calendar}
        if self.calendar in REAL_WORLD:
            attrs["units_metadata"] = "leap_seconds: none"
        return attrs

    def dates(self, times) -> np.ndarray:
        """Model times -> cftime dates in the model's calendar."""
        return np.asarray(
            cftime.num2date(
                np.asarray(times, float), self.units, self.calendar, only_use_cftime_datetimes=True
            )
        )

    def describe(self, time: float) -> str:
        """``time`` as a date in the model's calendar, for messages (e.g. '2000-01-03 12:00:00')."""
        try:
            return f"{float(time):g} ({self.dates([time])[0]})"
        except (ValueError, OverflowError):
            return f"{float(time):g}"

    def from_file(
        self, values, units: str | None, calendar: str | None, where: str
    ) -> tuple[np.ndarray, str | None]:
        """File time numbers with their CF ``units``/``calendar`` -> (model times, a note or None).

        NaN stays NaN. ``where`` names the file and variable in the :class:`DataError` raised for
        missing or unusable units, an unknown calendar, or one that cannot be converted. The note
        says what conversion was made (None when the file is already on the model's axis).
        """
        values = np.asarray(values, dtype=float)
        if units is None:
            raise DataError(
                f"{where}: has no 'units' attribute, so its numbers are not times; expected CF "
                f"units such as {self.units!r}. If the numbers are model times, say so with "
                "model_time = true for this file in the config"
            )
        file_calendar = DEFAULT_CALENDAR if calendar is None else calendar
        try:
            file_calendar = canonical_calendar(file_calendar)
            check_time_units(units, file_calendar)
        except ValueError as exc:
            raise DataError(f"{where}: unusable time units: {exc}") from None
        if file_calendar != self.calendar and not {file_calendar, self.calendar} <= REAL_WORLD:
            raise DataError(
                f"{where}: is in the {file_calendar!r} calendar, the model's time axis in the "
                f"{self.calendar!r} calendar ([time] calendar); there is no conversion between "
                "them (days would be relabelled, not converted). Set [time] calendar = "
                f"{file_calendar!r} to run in the file's calendar"
            )
        same = file_calendar == self.calendar and str(units).strip() == self.units.strip()
        if same:
            return values, None

        def convert(numbers):
            return self._convert(np.asarray(numbers, float), str(units), file_calendar)

        finite = values[np.isfinite(values)]
        try:
            first = float(finite.min()) if finite.size else 0.0
            span = float(finite.max()) - first if finite.size else 0.0
            step = (
                span if span >= 1.0 else 1000.0
            )  # anchor the scale on two far-apart times: no cancellation
            start, end = convert([first, first + step])
            scale = (end - start) / step
            middle = first + 0.5 * span
            exact_middle = convert([middle])[0]
        except (ValueError, OverflowError) as exc:
            raise DataError(
                f"{where}: times in {units!r} ({file_calendar}) cannot be converted to the model's "
                f"{self.units!r} ({self.calendar}): {exc}"
            ) from None
        model = start + scale * (values - first)
        if abs(start + scale * (middle - first) - exact_middle) > 1e-6 * max(
            1.0, abs(exact_middle)
        ):
            raise DataError(
                f"{where}: times in {units!r} ({file_calendar}) do not convert linearly to the "
                f"model's {self.units!r} ({self.calendar}); convert them before use"
            )
        offset = start - scale * first
        note = (
            f"times converted from {units!r} ({file_calendar} calendar) to model time "
            f"{self.units!r} ({self.calendar}): t_model = {offset:.10g} + {scale:.10g} t_file"
        )
        return model, note

    def _convert(self, numbers: np.ndarray, units: str, calendar: str) -> np.ndarray:
        dates = cftime.num2date(numbers, units, calendar, only_use_cftime_datetimes=True)
        if calendar != self.calendar:
            dates = np.array([date.change_calendar(self.calendar) for date in np.atleast_1d(dates)])
        return np.asarray(cftime.date2num(dates, self.units, self.calendar), dtype=float).reshape(
            np.shape(numbers)
        )
