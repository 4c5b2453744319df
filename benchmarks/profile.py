"""Where the time goes in one estimator call: a cProfile summary.

``python -m benchmarks --profile`` writes ``profile_twfe.txt`` beside the benchmark
table: the functions with the largest cumulative time in one call of
:func:`vanguard.did.twfe.estimate_twfe` on the synthetic panel (after a warm-up call, so
one-off compilation and imports are not counted).
"""

from __future__ import annotations

import cProfile
import io
import pstats
import warnings
from collections.abc import Callable


def profile_call(fn: Callable[[], object], top: int = 30, sort: str = "cumulative") -> str:
    """Profile one call of ``fn`` and return the top of the pstats report.

    Parameters
    ----------
    fn : callable
        Zero-argument callable (called once to warm up, once profiled).
    top : int
        Number of functions listed.
    sort : str
        pstats sort key.

    Returns
    -------
    str
    """
    fn()
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.strip_dirs().sort_stats(sort).print_stats(top)
    return buf.getvalue()


def profile_twfe(quick: bool = False, top: int = 30) -> str:
    """cProfile summary of one :func:`vanguard.did.twfe.estimate_twfe` call.

    Parameters
    ----------
    quick : bool
        Use the reduced synthetic panel.
    top : int

    Returns
    -------
    str

    Raises
    ------
    ImportError
        If :mod:`vanguard.did.twfe` cannot be imported.
    """
    from benchmarks.estimators import OUTCOME, SCALE, synthetic_panel
    from vanguard.did.twfe import estimate_twfe

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        panel = synthetic_panel(quick)

        def call():
            return estimate_twfe(panel, OUTCOME, scale=SCALE)

        return profile_call(call, top=top)
