"""How times and windows read on dacli's pictures: calendar dates, or ``t = ...`` in model time.

A file whose time is CF ``"<unit> since <epoch>"`` on a real model (QG in days since 2020-01-01)
gets dates from cftime in the file's calendar: titles say ``2020-01-11 00:00``, time axes carry
dates. A dimensionless model time (the Lorenz toy models, whatever label their time units carry)
keeps ``t = 10`` in model time units. Windows are numbered as ``dacli assimilate --windows``
numbers them: from 0, the first window of a ``--windows 100:200`` file being window 100.

Not for converting times between files (:mod:`dacli.io.times` does that).
Reference: CF Conventions 1.11, section 4.4; cftime documentation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from matplotlib.ticker import FuncFormatter, MaxNLocator

from dacli.io.times import TimeAxis

DATE = "%Y-%m-%d %H:%M"


@dataclass(frozen=True)
class FigureTimes:
    """The time context of a figure: how model times read, and the windows' numbers and spans.

    ``calendar``: the file's CF time axis when its times are dates, None for dimensionless model
    time; ``unit``: the word after ``t = ...`` then ('' for none). ``window_numbers`` (K,) are
    ``--windows`` numbers; ``window_starts`` / ``window_ends`` (K,) model times (ends may be
    None for files without them).
    """

    calendar: TimeAxis | None = None
    unit: str = ""
    window_numbers: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    window_starts: np.ndarray = field(default_factory=lambda: np.zeros(0))
    window_ends: np.ndarray | None = None

    def text(self, time: float) -> str:
        """'2020-01-11 00:00' (a date), or 't = 10' / 't = 10 MTU' (model time)."""
        if self.calendar is not None:
            return self.calendar.dates([float(time)])[0].strftime(DATE)
        return f"t = {float(time):g}{' ' + self.unit if self.unit else ''}"

    def span(self, start: float, end: float) -> str:
        """'2020-01-09 00:00 to 2020-01-11 00:00', or 't = 9.8 to 10'."""
        if self.calendar is not None:
            return f"{self.text(start)} to {self.text(end)}"
        return f"t = {float(start):g} to {float(end):g}{' ' + self.unit if self.unit else ''}"

    def window_text(self, position: int) -> str:
        """'window 4 (2020-01-09 00:00 to 2020-01-11 00:00)': the window at ``position`` in the
        file, by its --windows number, with its span."""
        number = int(self.window_numbers[position])
        start = float(self.window_starts[position])
        if self.window_ends is None:
            return f"window {number} (from {self.text(start)})"
        return f"window {number} ({self.span(start, float(self.window_ends[position]))})"

    def axis_label(self) -> str:
        """The label of a time axis: 'date (standard calendar)', 'time' or 'time [MTU]'."""
        if self.calendar is not None:
            return f"date ({self.calendar.calendar} calendar)"
        return f"time [{self.unit}]" if self.unit else "time"

    def format_axis(self, axis) -> None:
        """Dates on a matplotlib ``axis`` (``axes.xaxis`` or ``.yaxis``) of model times: ticks on
        whole model time units, labelled '2020-01-11' (or '01-11 06:00' off midnight).
        Model time axes are left as matplotlib draws them."""
        if self.calendar is None:
            return
        calendar = self.calendar
        axis.set_major_locator(MaxNLocator(nbins=6, integer=True))

        def label(value: float, _position=None) -> str:
            date = calendar.dates([value])[0]
            if (date.hour, date.minute, date.second) == (0, 0, 0):
                return date.strftime("%Y-%m-%d")
            return date.strftime("%m-%d %H:%M")

        axis.set_major_formatter(FuncFormatter(label))
