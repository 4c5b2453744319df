"""NHS England Monthly Activity Return (MAR): download, parse, CCG crosswalk, panel.

Typical use::

    from vanguard.mar import build_panel, load_mar
    mar = load_mar()                 # tidy: month, org_code, org_name, org_type, measure, value
    panel = build_panel()            # area x month, Apr 2013 - Mar 2018, 2017-04 footprint,
                                     # mixed areas and data-quality failures left out,
                                     # with population, population_65plus, population_75plus
    flows = flow_table(panel.attrs["areas"], load_register())
"""

from vanguard.mar.areas import flow_table, footprint_for_window
from vanguard.mar.crosswalk import fold, fold_areas, read_crosswalk
from vanguard.mar.manifest import read_manifest
from vanguard.mar.panel import OUTCOMES, build_panel, folded_register
from vanguard.mar.parse import MEASURES, check_table, load_mar, parse_all, parse_file
from vanguard.mar.quality import flag_anomalies, quality_hits, read_notes
from vanguard.mar.windows import HEADLINE, SUSTAINABILITY, WINDOWS

__all__ = [
    "HEADLINE",
    "MEASURES",
    "OUTCOMES",
    "SUSTAINABILITY",
    "WINDOWS",
    "flow_table",
    "footprint_for_window",
    "quality_hits",
    "build_panel",
    "check_table",
    "fold",
    "flag_anomalies",
    "fold_areas",
    "folded_register",
    "load_mar",
    "parse_all",
    "parse_file",
    "read_crosswalk",
    "read_manifest",
    "read_notes",
]
