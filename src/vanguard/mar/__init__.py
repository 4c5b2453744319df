"""NHS England Monthly Activity Return (MAR): download, parse, CCG crosswalk, panel.

Typical use::

    from vanguard.mar import build_panel, load_mar
    mar = load_mar()                 # tidy: month, org_code, org_name, org_type, measure, value
    panel = build_panel()            # CCG x month, Apr 2013 - Mar 2019, 2018-04 footprint
"""

from vanguard.mar.crosswalk import fold, fold_areas, read_crosswalk
from vanguard.mar.manifest import read_manifest
from vanguard.mar.panel import build_panel, folded_register
from vanguard.mar.parse import MEASURES, check_table, load_mar, parse_all, parse_file
from vanguard.mar.quality import flag_anomalies

__all__ = [
    "MEASURES",
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
]
