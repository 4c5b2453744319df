"""Calendar windows of the real-data analysis: the headline panel and the sustainability window.

The vanguard programme was funded from April 2015 to March 2018 (NAO 2018). The
headline panel runs April 2013 (the first CCG month) to March 2018, on the footprint of
April 2017 (:func:`vanguard.mar.areas.footprint_for_window`). The *sustainability*
window (Wattal et al. 2024, Eur J Health Econ, doi 10.1007/s10198-024-01676-0, who follow
sites 22 months after the programme) is April 2018 to the last month of the files
(December 2019): did effects persist, fade or appear after the funding stopped? Its
panel runs April 2013 - December 2019, which spans the April 2018 and April 2019
mergers, so it is built on the April 2019 footprint, where more areas are mixed.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class CalendarWindow:
    """A named span of calendar months, inclusive.

    Attributes
    ----------
    name : str
    first, last : str
        Months as ``YYYY-MM``; ``last`` may be ``None`` for "the last month of the data".
    panel_first, panel_last : str
        The panel the window is analysed in (pre-period included).
    note : str
    """

    name: str
    first: str
    last: str | None
    panel_first: str
    panel_last: str | None
    note: str

    def months(self, data_last=None) -> tuple[pd.Timestamp, pd.Timestamp]:
        """First and last month, ``last`` defaulting to ``data_last``.

        Raises
        ------
        ValueError
            If ``last`` is open and ``data_last`` is not given.
        """
        if self.last is None and data_last is None:
            raise ValueError(f"window {self.name}: open-ended; give data_last (the last month)")
        last = self.last if self.last is not None else data_last
        return pd.Timestamp(self.first), pd.Timestamp(last).to_period("M").to_timestamp()


MAR_LAST_MONTH = "2019-12"
"""Last month of the committed MAR manifest."""

HEADLINE = CalendarWindow(
    name="headline",
    first="2015-04",
    last="2018-03",
    panel_first="2013-04",
    panel_last="2018-03",
    note="programme years (funding April 2015 - March 2018); Morciano et al. 2020 windows "
    "(years 1-3 after each site's start) are taken inside this panel",
)
SUSTAINABILITY = CalendarWindow(
    name="sustainability",
    first="2018-04",
    last=None,
    panel_first="2013-04",
    panel_last=None,
    note="after the programme's funding ended (Wattal et al. 2024): April 2018 to the "
    "last month of the files (December 2019)",
)
WINDOWS: dict[str, CalendarWindow] = {w.name: w for w in (HEADLINE, SUSTAINABILITY)}
"""The calendar windows, by name."""
