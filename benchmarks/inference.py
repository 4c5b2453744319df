"""Benchmark of resampling inference: wild cluster bootstrap and randomisation inference.

Both run through the public route a notebook uses,
:func:`vanguard.did.twfe.estimate_twfe` with ``inference="wild_bootstrap"`` or
``"randomisation"``, for one group and the pooled window of the synthetic panel, at 999
and 9,999 draws; the cluster-robust fit of the same model is the baseline, so the ratio
is the price of the resampling, and ``value`` is seconds per 1,000 draws.
"""

from __future__ import annotations

import warnings

from benchmarks import Result, interleaved, skipped
from benchmarks.estimators import OUTCOME, SCALE, _importable, synthetic_panel
from vanguard import schema

DRAWS: tuple[int, ...] = (999, 9_999)
QUICK_DRAWS: tuple[int, ...] = (49, 199)
BUDGET_S: float = 120.0
"""A method whose smaller draw count takes longer than this is not run at the larger
one; the table gives the linear extrapolation instead."""
SEED = 20150310


def run(*, quick: bool = False, repeats: int = 3) -> list[Result]:
    """Time wild cluster bootstrap and randomisation inference at two draw counts.

    Parameters
    ----------
    quick : bool
        Tiny draw counts (:data:`QUICK_DRAWS`) on a reduced panel.
    repeats : int
        Timed runs per method and draw count.

    Returns
    -------
    list of Result
    """
    case = f"TWFE {OUTCOME} ({SCALE}), population-based, years 1-3"
    why = _importable("vanguard.did.twfe") or _importable("vanguard.did.inference")
    if why:
        return [skipped("inference", case, "wild bootstrap / randomisation", why)]
    from vanguard.did.twfe import estimate_twfe

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        panel = synthetic_panel(quick)

    def fit(method: str, draws: int = 999):
        def call():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return estimate_twfe(
                    panel,
                    OUTCOME,
                    scale=SCALE,
                    groups=(schema.POPULATION_BASED,),
                    windows=("years_1_3",),
                    inference=method,
                    n_boot=draws,
                    seed=SEED,
                )

        return call

    draws = QUICK_DRAWS if quick else DRAWS
    base_t = interleaved({"cluster": fit("cluster")}, repeats)["cluster"]
    results = [
        Result(
            "inference", case, "cluster-robust (CRV1)", size="analytic", times=base_t, baseline=True
        )
    ]
    for method, label in (
        ("wild_bootstrap", "wild cluster bootstrap (Webb)"),
        ("randomisation", "randomisation inference"),
    ):
        previous = None
        for b in draws:
            size = f"{b:,} draws"
            if previous is not None and previous.median * b / draws[0] > BUDGET_S:
                est = previous.median * b / draws[0]
                results.append(
                    skipped(
                        "inference",
                        case,
                        label,
                        f"about {est:,.0f} s extrapolated from "
                        f"{draws[0]:,} draws (budget {BUDGET_S:g} s)",
                        size=size,
                    )
                )
                continue
            print(f"  inference: {label}, {size}", flush=True)
            try:
                last = []
                call = fit(method, b)
                t = interleaved(
                    {"x": lambda call=call, last=last: last.append(call())},
                    repeats,
                    # the cluster-robust runs above already warmed the shared path
                    warmup=False,
                )["x"]
                res = last[-1]
                note = f"p = {float(res['p_value'].iloc[0]):.3f}"
            except Exception as exc:  # report and go on
                results.append(
                    Result(
                        "inference",
                        case,
                        label,
                        size=size,
                        note=f"failed: {type(exc).__name__}: {exc}",
                    )
                )
                break
            r = Result("inference", case, label, size=size, times=t, note=note, ratio_to="analytic")
            r.value = r.median / b * 1000
            r.note += f"; {r.value:.3f} s per 1,000 draws"
            results.append(r)
            previous = r
    return results
