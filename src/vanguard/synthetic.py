"""A synthetic England that behaves like the New Care Models programme, with known truth.

Everything here is SYNTHETIC: no row describes a real place or a real patient. The data
exist so that every notebook runs anywhere, and so that every estimator can be checked
against a planted effect whose true value is known exactly.

The data-generating process
---------------------------
Areas ``S001`` ... ``S210``, months April 2010 - March 2019. For area *i*, month *t* and
outcome *o* the expected count without any programme (potential outcome ``mu0``) is::

    mu0 = pop[i,t] / 1000 * base[o] * exp(a[i,o] + (g[o] + b[i,o]) * years[t]
                                          + season[o, month-of-year] + log(days[t] / 30.4375)
                                          + n[o,t] + e[i,o,t])

``pop``
    100k-900k residents, growing 0.2-1.2 % a year (integers).
``base``
    Rate per 1,000 per month in the middle of the pre-period (October 2012):
    7.5 emergency admissions, 5 x that in bed days, 2.5 x that in A&E attendances.
``a``, ``b``
    Area heterogeneity in level (log sd 0.15, shared across outcomes, plus a small
    outcome-specific part that keeps bed days at 4-6 and A&E at 2-3 times admissions)
    and in trend (sd 0.004 a year).
``g``
    National growth per year: 3 % for emergency admissions, 1 % bed days, 2 % A&E.
``season``
    Cosine seasonality: winter peak (January) for admissions and bed days, summer peak
    (July) for A&E; plus the number of days in the month.
``n``, ``e``
    A national monthly shock and area-level AR(1) noise (rho = 0.7, marginal sd 0.03) on
    the log scale; both are part of the expected values.

Observed counts are Poisson(``mu``) for admissions and A&E attendances, and
over-dispersed for bed days (a gamma-Poisson mixture with variance 15 x mean, because one
admission contributes many days).

Treatment mirrors the programme: 23 population-based sites (9 PACS, 14 MCP) and 6
care-home sites (EHCH) from wave 1 start in April 2015; 8 urgent & emergency care sites
(UEC) from wave 2 start in August 2015. Each site covers one area; the remaining 173
areas are controls. The site register is written in the same format as the real one
(``sites.csv``, ``site_areas.csv``).

Planted effects
---------------
Effects act MULTIPLICATIVELY on the expected count: ``mu1 = mu0 * exp(delta)``, with
``delta`` a log effect that depends on the site type, the outcome and the year since
start (months 0-11 are year 1) and stays at its year-3 value afterwards. Each site's
effect is the type's effect times a site multiplier ``1 + 0.4 z`` (z standard normal),
so per-site effects differ around the group mean. Defaults (log points, years 1/2/3):

=================  ======================  ======================  ======================
group              emergency_admissions    bed_days                ae_attendances
=================  ======================  ======================  ======================
population_based   0, 0, -0.0036           0, 0, 0                 0, 0, 0
care_home          -0.0022, -0.0042,       -0.001, -0.002, -0.003  0, -0.001, -0.002
                   -0.0076
uec                0, -0.001, -0.002       0, 0, 0                 -0.010, -0.015, -0.020
=================  ======================  ======================  ======================

On the rate scale these are about -0.04 emergency admissions per 1,000 per month for
care-home sites over years 1-3 (deepening from year 1 to year 3) and about -0.03 in
year 3 for population-based sites, the size Morciano et al. (2020) report.

The truth table
---------------
``truth`` holds the TRUE average effect for every group x window (:data:`schema.WINDOWS`)
x outcome x scale, computed from the expected values (no count noise) over the treated
area-months of the group in the window, so that it is the estimand of the matching
difference-in-differences estimator:

``rate``     mean of ``(mu1 - mu0) / pop * 1000``
``count``    mean of ``(mu1 - mu0)``
``log``      mean of ``log(mu1 / mu0)``
``poisson``  ``log(sum mu1 / sum mu0)``

Group rows have ``site == ""``; per-site rows (for forest plots) name the site.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from vanguard import config, schema
from vanguard.io import write_csv, write_text
from vanguard.sites import AREA_COLUMNS, SITE_COLUMNS

log = logging.getLogger(__name__)

DEFAULT_SEED: int = 20150310
"""The wave-1 announcement date; seeds the committed synthetic England."""

DEFAULT_START = "2010-04"
DEFAULT_END = "2019-03"
REFERENCE_MONTH = pd.Timestamp("2012-10-01")
"""Middle of the pre-period: the base rates hold here and time trends are centred on it."""

WAVE1_START = pd.Timestamp("2015-04-01")
UEC_START = pd.Timestamp("2015-08-01")
WAVE1_ANNOUNCED = "2015-03-10"
UEC_ANNOUNCED = "2015-07-24"

SITE_COUNTS: dict[str, int] = {"PACS": 9, "MCP": 14, "EHCH": 6, "UEC": 8}
"""Synthetic sites per vanguard type: 23 population-based, 6 care-home, 8 UEC."""

OUTCOMES: tuple[str, ...] = schema.SYNTHETIC_OUTCOMES

AREA_LEVEL_SD = 0.15
"""Between-area spread of the log level shared by all outcomes."""
AREA_TREND_SD = 0.004
"""Between-area spread of the log trend, per year."""
NOISE_SD = 0.03
"""Marginal sd of the area-level AR(1) noise on the log expected count."""
NOISE_RHO = 0.7
"""Month-to-month autocorrelation of that noise."""
NATIONAL_SD = 0.01
"""Sd of the national monthly shock (common to all areas)."""


@dataclass(frozen=True)
class OutcomeSpec:
    """Data-generating parameters of one outcome (see the module docstring)."""

    base_rate: float  # per 1,000 per month at REFERENCE_MONTH
    growth: float  # national growth, log points per year
    season_amplitude: float  # log amplitude of the cosine seasonality
    peak_month: int  # calendar month of the seasonal peak
    ratio_sd: float  # outcome-specific area level sd, on top of the shared level
    dispersion: float  # variance / mean of the count noise; 1 = Poisson


OUTCOME_SPECS: dict[str, OutcomeSpec] = {
    "emergency_admissions": OutcomeSpec(7.5, np.log(1.03), 0.05, 1, 0.0, 1.0),
    "bed_days": OutcomeSpec(7.5 * 5.0, np.log(1.01), 0.08, 1, 0.06, 15.0),
    "ae_attendances": OutcomeSpec(7.5 * 2.5, np.log(1.02), 0.04, 7, 0.06, 1.0),
}

_DEFAULT_EFFECTS: dict[tuple[str, str], tuple[float, float, float]] = {
    (schema.POPULATION_BASED, "emergency_admissions"): (0.0, 0.0, -0.0036),
    (schema.CARE_HOME, "emergency_admissions"): (-0.0022, -0.0042, -0.0076),
    (schema.CARE_HOME, "bed_days"): (-0.001, -0.002, -0.003),
    (schema.CARE_HOME, "ae_attendances"): (0.0, -0.001, -0.002),
    (schema.UEC, "emergency_admissions"): (0.0, -0.001, -0.002),
    (schema.UEC, "ae_attendances"): (-0.010, -0.015, -0.020),
}


@dataclass(frozen=True)
class EffectSpec:
    """Planted effects: log effects on the expected count by group, outcome and year.

    Parameters
    ----------
    log_effects : mapping
        ``(group, outcome) -> (year_1, year_2, year_3)`` log effects; year 3's value
        continues afterwards. Pairs not listed have no effect.
    site_sd : float
        Spread of the site multipliers ``1 + site_sd * z`` around the group effect.
    """

    log_effects: Mapping[tuple[str, str], tuple[float, float, float]] = field(
        default_factory=lambda: dict(_DEFAULT_EFFECTS)
    )
    site_sd: float = 0.4

    def __post_init__(self) -> None:
        for (group, outcome), years in self.log_effects.items():
            if group not in schema.ANALYSIS_GROUPS:
                raise ValueError(f"effects: group {group!r} not one of {schema.ANALYSIS_GROUPS}")
            if len(tuple(years)) != 3:
                raise ValueError(f"effects: {group}/{outcome}: expected 3 yearly effects")
        if self.site_sd < 0:
            raise ValueError("effects: site_sd must be non-negative")

    def scaled(self, factor: float) -> EffectSpec:
        """Every log effect multiplied by ``factor`` (0 gives no effect at all)."""
        return dataclasses.replace(
            self,
            log_effects={
                k: tuple(factor * v for v in years) for k, years in self.log_effects.items()
            },
        )

    @classmethod
    def none(cls) -> EffectSpec:
        """No planted effect anywhere (for size checks of tests)."""
        return cls(log_effects={}, site_sd=0.0)

    def path(self, group: str, outcome: str, months_since: np.ndarray) -> np.ndarray:
        """Log effect at each month since start (0 before start, i.e. negative input)."""
        years = np.asarray(self.log_effects.get((group, outcome), (0.0, 0.0, 0.0)), float)
        k = np.asarray(months_since)
        idx = np.clip(k // 12, 0, 2).astype(int)
        return np.where(k >= 0, years[idx], 0.0)


@dataclass
class SyntheticData:
    """One draw of the synthetic England.

    Attributes
    ----------
    panel : pandas.DataFrame
        Area-month panel in the :mod:`vanguard.schema` contract (with ``group``,
        ``start``, ``site``), ``attrs["data_source"] == "synthetic"``.
    sites : pandas.DataFrame
        Site register, same columns as the real ``vanguard_sites.csv``.
    site_areas : pandas.DataFrame
        Site-to-area footprint, same columns as the real footprint file.
    truth : pandas.DataFrame
        True effects: ``group, site, window, outcome, scale, truth, n_areas, n_obs``.
    expected : dict
        ``mu0`` and ``mu1`` (``{outcome: array}``) and ``since`` (months since start,
        -1 when not exposed): arrays of shape (areas, months) in the panel's area and
        month order, for checks of the truth table.
    """

    panel: pd.DataFrame
    sites: pd.DataFrame
    site_areas: pd.DataFrame
    truth: pd.DataFrame
    expected: dict = field(repr=False, default_factory=dict)

    def true_effect(
        self, group: str, window: str, outcome: str, scale: str, site: str = ""
    ) -> float:
        """The planted effect for one row of the truth table.

        Raises
        ------
        KeyError
            If the combination is not in the truth table.
        """
        t = self.truth
        hit = t[
            (t["group"] == group)
            & (t["window"] == window)
            & (t["outcome"] == outcome)
            & (t["scale"] == scale)
            & (t["site"] == site)
        ]
        if len(hit) != 1:
            raise KeyError(f"no truth row for {(group, window, outcome, scale, site)}")
        return float(hit["truth"].iloc[0])


TRUTH_COLUMNS = ["group", "site", "window", "outcome", "scale", "truth", "n_areas", "n_obs"]


def _month_range(start, end) -> pd.DatetimeIndex:
    lo = pd.Timestamp(start).to_period("M").to_timestamp()
    hi = pd.Timestamp(end).to_period("M").to_timestamp()
    if hi < lo:
        raise ValueError(f"synthetic: end {end!r} is before start {start!r}")
    return pd.date_range(lo, hi, freq="MS")


def _register(rng: np.random.Generator, n_areas: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    n_sites = sum(SITE_COUNTS.values())
    if n_areas < n_sites + 2:
        raise ValueError(f"synthetic: n_areas must be at least {n_sites + 2}; got {n_areas}")
    treated = rng.permutation(n_areas)[:n_sites]
    site_rows, area_rows = [], []
    pos = 0
    for site_type, count in SITE_COUNTS.items():
        uec = site_type == "UEC"
        for k in range(1, count + 1):
            site_id = f"{site_type}{k:02d}"
            area = f"S{treated[pos] + 1:03d}"
            pos += 1
            site_rows.append(
                {
                    "site_id": site_id,
                    "type": site_type,
                    "wave": 2 if uec else 1,
                    "announced": UEC_ANNOUNCED if uec else WAVE1_ANNOUNCED,
                    "start_month": (UEC_START if uec else WAVE1_START).strftime("%Y-%m"),
                    "name": f"Synthetic {site_type} site {k}",
                    "footprint": "area",
                    "source_url": "",
                    "note": "SYNTHETIC: generated by vanguard.synthetic",
                }
            )
            area_rows.append(
                {
                    "site_id": site_id,
                    "area": area,
                    "area_name": f"Synthetic area {area}",
                    "coverage": "whole",
                    "evidence": "synthetic",
                }
            )
    sites = pd.DataFrame(site_rows, columns=SITE_COLUMNS)
    areas = pd.DataFrame(area_rows, columns=AREA_COLUMNS).sort_values(["site_id", "area"])
    return sites, areas.reset_index(drop=True)


def _area_treatment(
    sites: pd.DataFrame, site_areas: pd.DataFrame, areas: list[str]
) -> pd.DataFrame:
    """Group, start and site of every area; each synthetic area is in at most one site."""
    m = site_areas.merge(sites[["site_id", "type", "start_month"]], on="site_id")
    out = pd.DataFrame(
        {schema.AREA: areas, schema.GROUP: schema.CONTROL, schema.START: pd.NaT, schema.SITE: ""}
    )
    out[schema.START] = pd.to_datetime(out[schema.START]).astype("datetime64[ns]")
    out = out.set_index(schema.AREA)
    for row in m.itertuples(index=False):
        out.loc[row.area, schema.GROUP] = schema.SITE_TYPE_GROUP[row.type]
        out.loc[row.area, schema.START] = pd.Timestamp(row.start_month + "-01")
        out.loc[row.area, schema.SITE] = row.site_id
    return out.reset_index()


def _ar1(rng: np.random.Generator, shape: tuple[int, int], rho: float, sd: float) -> np.ndarray:
    """Stationary AR(1) along the last axis, marginal sd ``sd``."""
    z = rng.standard_normal(shape)
    out = np.empty(shape)
    out[:, 0] = sd * z[:, 0]
    innov = sd * np.sqrt(1.0 - rho**2)
    for t in range(1, shape[1]):
        out[:, t] = rho * out[:, t - 1] + innov * z[:, t]
    return out


def generate(
    seed: int = DEFAULT_SEED,
    n_areas: int = 210,
    effects: EffectSpec | None = None,
    start=DEFAULT_START,
    end=DEFAULT_END,
) -> SyntheticData:
    """Draw a synthetic England in memory.

    Areas, populations, the site register and the treated areas depend on ``seed`` and
    ``n_areas`` only, not on ``effects``, so that scaling the effects changes nothing
    else about the design.

    Parameters
    ----------
    seed : int
        Seed of every random draw.
    n_areas : int
        Number of areas (at least the 37 treated areas plus 2 controls).
    effects : EffectSpec, optional
        Planted effects; default :class:`EffectSpec` (``EffectSpec.none()`` for none).
    start, end : str or Timestamp
        First and last month. The data must include the months before and at the
        programme's starts (April and August 2015).

    Returns
    -------
    SyntheticData

    Raises
    ------
    ValueError
        If ``n_areas`` is too small or the months do not span the programme starts.
    """
    effects = EffectSpec() if effects is None else effects
    months = _month_range(start, end)
    if not (months[0] < WAVE1_START and months[-1] >= UEC_START):
        raise ValueError(
            f"synthetic: months must start before {WAVE1_START:%Y-%m} and reach "
            f"{UEC_START:%Y-%m}; got {months[0]:%Y-%m} to {months[-1]:%Y-%m}"
        )
    # Separate streams: the design never shifts when effects or noise draws change.
    rng_design, rng_latent, rng_count, rng_site = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)
    )
    n_t = len(months)
    areas = [f"S{i + 1:03d}" for i in range(n_areas)]
    sites, site_areas = _register(rng_design, n_areas)
    treat = _area_treatment(sites, site_areas, areas)

    years = (
        (months.year - REFERENCE_MONTH.year) * 12 + (months.month - REFERENCE_MONTH.month)
    ).to_numpy() / 12.0
    pop0 = np.clip(np.exp(rng_design.normal(np.log(250_000), 0.5, n_areas)), 100_000, 900_000)
    pop_growth = rng_design.uniform(0.002, 0.012, n_areas)
    pop = np.round(pop0[:, None] * np.exp(pop_growth[:, None] * years[None, :]))
    level_sd = AREA_LEVEL_SD
    level = rng_design.normal(-(level_sd**2) / 2, level_sd, n_areas)
    days = months.days_in_month.to_numpy() / 30.4375
    moy = months.month.to_numpy()
    common_noise = _ar1(rng_latent, (n_areas, n_t), NOISE_RHO, NOISE_SD * np.sqrt(0.5))

    # Months since start for every area (-1 for controls: never exposed).
    start_idx = np.full(n_areas, -1, dtype=int)
    since = np.full((n_areas, n_t), -1, dtype=int)
    month_num = months.year.to_numpy() * 12 + months.month.to_numpy()
    for i, s in enumerate(treat[schema.START]):
        if pd.notna(s):
            k = month_num - (s.year * 12 + s.month)
            since[i] = np.where(k >= 0, k, -1)
            start_idx[i] = int(np.argmax(k >= 0))
    site_mult = {
        sid: 1.0 + effects.site_sd * z
        for sid, z in zip(sites["site_id"], rng_site.standard_normal(len(sites)), strict=True)
    }
    mult = np.array([site_mult.get(s, 0.0) for s in treat[schema.SITE]])

    data = {
        schema.AREA: np.repeat(areas, n_t),
        schema.MONTH: np.tile(months, n_areas),
        schema.POPULATION: pop.ravel(),
    }
    mu0s, mu1s = {}, {}
    for o in OUTCOMES:
        spec = OUTCOME_SPECS[o]
        own_level = rng_design.normal(-(spec.ratio_sd**2) / 2, spec.ratio_sd, n_areas)
        trend = rng_design.normal(0.0, AREA_TREND_SD, n_areas)
        national = NATIONAL_SD * rng_latent.standard_normal(n_t)
        own_noise = _ar1(rng_latent, (n_areas, n_t), NOISE_RHO, NOISE_SD * np.sqrt(0.5))
        noise = common_noise + own_noise - NOISE_SD**2 / 2  # E[exp(noise)] = 1
        season = spec.season_amplitude * np.cos(2 * np.pi * (moy - spec.peak_month) / 12)
        log_mu0 = (
            np.log(pop / 1000 * spec.base_rate)
            + (level + own_level)[:, None]
            + (spec.growth + trend)[:, None] * years[None, :]
            + (season + np.log(days) + national)[None, :]
            + noise
        )
        delta = np.zeros((n_areas, n_t))
        for g in schema.ANALYSIS_GROUPS:
            rows = np.isin(treat[schema.GROUP].to_numpy(), schema.GROUP_MEMBERS[g])
            delta[rows] += mult[rows, None] * effects.path(g, o, since[rows])
        mu0 = np.exp(log_mu0)
        mu1 = mu0 * np.exp(delta)
        if spec.dispersion > 1:
            # Gamma-Poisson with variance = dispersion * mean (quasi-Poisson scale).
            lam = rng_count.gamma(mu1 / (spec.dispersion - 1), spec.dispersion - 1)
        else:
            lam = mu1
        data[o] = rng_count.poisson(lam).ravel().astype(np.int64)
        mu0s[o], mu1s[o] = mu0, mu1

    panel = pd.DataFrame(data)
    panel[schema.MONTH] = panel[schema.MONTH].astype("datetime64[ns]")
    panel = panel.merge(treat, on=schema.AREA, how="left", validate="many_to_one")
    panel.attrs["data_source"] = "synthetic"
    truth = _truth(treat, sites, since, pop, mu0s, mu1s)
    return SyntheticData(
        panel=panel,
        sites=sites,
        site_areas=site_areas,
        truth=truth,
        expected={"mu0": mu0s, "mu1": mu1s, "since": since},
    )


def _effect_rows(mu0: np.ndarray, mu1: np.ndarray, pop: np.ndarray) -> dict[str, float]:
    return {
        "rate": float(np.mean((mu1 - mu0) / pop * 1000.0)),
        "count": float(np.mean(mu1 - mu0)),
        "log": float(np.mean(np.log(mu1 / mu0))),
        "poisson": float(np.log(mu1.sum() / mu0.sum())),
    }


def _truth(treat, sites, since, pop, mu0s, mu1s) -> pd.DataFrame:
    groups = treat[schema.GROUP].to_numpy()
    site_of = treat[schema.SITE].to_numpy()
    type_of = dict(zip(sites["site_id"], sites["type"], strict=True))
    units: list[tuple[str, str, np.ndarray]] = []
    for g in schema.ANALYSIS_GROUPS:
        units.append((g, "", np.isin(groups, schema.GROUP_MEMBERS[g])))
    for sid in sites["site_id"]:
        units.append((schema.SITE_TYPE_GROUP[type_of[sid]], sid, site_of == sid))
    rows = []
    for g, sid, area_mask in units:
        for w, (lo, hi) in schema.WINDOWS.items():
            cell = area_mask[:, None] & (since >= lo) & (since < hi)
            if not cell.any():
                continue
            n_areas = int(cell.any(axis=1).sum())
            for o in OUTCOMES:
                eff = _effect_rows(mu0s[o][cell], mu1s[o][cell], pop[cell])
                for scale in schema.SCALES:
                    rows.append(
                        {
                            "group": g,
                            "site": sid,
                            "window": w,
                            "outcome": o,
                            "scale": scale,
                            "truth": eff[scale],
                            "n_areas": n_areas,
                            "n_obs": int(cell.sum()),
                        }
                    )
    return pd.DataFrame(rows, columns=TRUTH_COLUMNS)


# --- committed files ------------------------------------------------------------------

PANEL_FILE = "panel.csv"
SITES_FILE = "sites.csv"
AREAS_FILE = "site_areas.csv"
TRUTH_FILE = "truth.csv"
README_FILE = "README.md"

RAW_PANEL_COLUMNS = [schema.AREA, schema.MONTH, schema.POPULATION, *OUTCOMES]
"""Columns of the committed panel file; treatment comes from the register."""

_README = """\
# SYNTHETIC data: a synthetic England for the vanguard evaluation

**Every file in this folder is SYNTHETIC.** No row describes a real area, organisation
or patient. The files are generated by `python -m vanguard.synthetic` (module
`src/vanguard/synthetic.py`, seed {seed}) and a test checks that regenerating them gives
byte-identical files. Do not edit them by hand.

| file | what it is |
|---|---|
| `panel.csv` | area-month panel: `area` (S001-S{n:03d}), `month` (YYYY-MM, {first} to {last}), `population`, integer counts `emergency_admissions`, `bed_days`, `ae_attendances` |
| `sites.csv` | synthetic site register, same columns as the real one; names read "Synthetic <type> site <k>" |
| `site_areas.csv` | synthetic site-to-area footprint (one area per site), same columns as the real one |
| `truth.csv` | the TRUE effects planted in the data (see below) |

## Design

- {n} areas, populations 100k-900k, slowly growing.
- Emergency admissions about 7.5 per 1,000 per month in the pre-period, growing about
  3 % a year, with a winter peak; bed days about 5 x and A&E attendances about 2.5 x
  admissions (A&E peaks in summer).
- Area differences in level and trend; AR(1) noise on the log of the expected count;
  Poisson counts (bed days over-dispersed, variance 15 x mean).
- 23 population-based sites (9 PACS, 14 MCP) and 6 care-home sites (EHCH) start in
  April 2015; 8 urgent & emergency care sites (UEC) start in August 2015. One area per
  site; the other {n_control} areas are controls.
- Effects are multiplicative on the expected count, differ by site type and site, grow
  with time since start and continue after year 3 (table in the module docstring).

## Truth table (`truth.csv`)

Columns `group, site, window, outcome, scale, truth, n_areas, n_obs`. For each group
(treated areas as in `vanguard.schema.GROUP_MEMBERS`) or site, window (months since
start: `years_1_3` 0-35, `year_1` 0-11, `year_2` 12-23, `year_3` 24-35), outcome and
scale, over the treated area-months in the window, with `mu1`/`mu0` the expected counts
with/without the programme (no count noise):

| scale | truth |
|---|---|
| `rate` | mean of `(mu1 - mu0) / population * 1000` |
| `count` | mean of `mu1 - mu0` |
| `log` | mean of `log(mu1 / mu0)` |
| `poisson` | `log(sum mu1 / sum mu0)` |

`site` is empty for group rows and names the site for per-site rows.
"""


def write(out_dir: str | Path = config.SYNTHETIC_DIR, *, seed: int = DEFAULT_SEED) -> dict:
    """Generate the default synthetic England and write its files atomically.

    Parameters
    ----------
    out_dir : str or pathlib.Path
        Destination folder (default ``data/raw/synthetic``).
    seed : int
        Seed (the committed files use :data:`DEFAULT_SEED`).

    Returns
    -------
    dict
        File name -> path written.

    Raises
    ------
    OSError
        If the folder cannot be written.
    """
    out_dir = Path(out_dir)
    syn = generate(seed=seed)
    panel = syn.panel[RAW_PANEL_COLUMNS].copy()
    panel[schema.MONTH] = panel[schema.MONTH].dt.strftime("%Y-%m")
    panel[schema.POPULATION] = panel[schema.POPULATION].astype(np.int64)
    n_areas = panel[schema.AREA].nunique()
    n_control = int((syn.panel.drop_duplicates(schema.AREA)[schema.GROUP] == schema.CONTROL).sum())
    paths = {
        PANEL_FILE: write_csv(out_dir / PANEL_FILE, panel),
        SITES_FILE: write_csv(out_dir / SITES_FILE, syn.sites),
        AREAS_FILE: write_csv(out_dir / AREAS_FILE, syn.site_areas),
        TRUTH_FILE: write_csv(out_dir / TRUTH_FILE, syn.truth, float_format="%.10g"),
        README_FILE: write_text(
            out_dir / README_FILE,
            _README.format(
                seed=seed,
                n=n_areas,
                n_control=n_control,
                first=panel[schema.MONTH].iloc[0],
                last=panel[schema.MONTH].iloc[-1],
            ),
        ),
    }
    return paths


def main(argv: list[str] | None = None) -> int:
    """Regenerate ``data/raw/synthetic/`` (``python -m vanguard.synthetic [OUT_DIR]``)."""
    import argparse

    parser = argparse.ArgumentParser(description="Write the SYNTHETIC England data files.")
    parser.add_argument("out_dir", nargs="?", default=str(config.SYNTHETIC_DIR))
    args = parser.parse_args(argv)
    for name, path in write(args.out_dir).items():
        print(f"wrote {name}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
