"""Which figures of a run the report shows, in what order, with their alt text."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from vanguard.errors import DataError

FIGURE_SECTIONS: tuple[tuple[str, str], ...] = (
    ("trends", "Indexed trends by site type"),
    ("truth_comparison", "Estimates against the planted truth"),
    ("event_study", "Event studies and pre-trend tests"),
    ("estimator_comparison", "Estimators and inference methods"),
    ("did_", "Effects by window, one estimator at a time"),
    ("inference_", "Inference methods side by side"),
    ("forest", "Effects by vanguard site"),
    ("mde", "Minimum detectable effect"),
)
"""Figure name prefixes, in report order, with section titles."""


def figure_entries(run_path: Path, outcome: str | None = None,
                   outcomes: Sequence[str] = ()) -> tuple[list[dict], list[str]]:
    """Figures found in ``figures/``, in report order, with their alt text.

    Parameters
    ----------
    run_path : pathlib.Path
    outcome : str, optional
        The headline outcome: figures named after another of ``outcomes`` are left out
        of the document (and listed) to keep it readable; so are the one-estimator
        ``did_*`` charts when the combined ``estimator_comparison*`` chart exists.
    outcomes : sequence of str
        Every outcome of the run.

    Returns
    -------
    (list of dict, list of str)
        Entries ``section``, ``name``, ``path`` (relative to the run), ``alt``; and the
        names of the figures left out.

    Raises
    ------
    DataError
        If an embedded figure has no alt text.
    """
    folder = run_path / "figures"
    pngs = sorted(folder.glob("*.png")) if folder.is_dir() else []
    others = [o for o in outcomes if o != outcome]
    left_out = [p.stem for p in pngs if outcome and outcome not in p.stem
                and any(o in p.stem for o in others)]
    if any(p.stem.startswith("estimator_comparison") for p in pngs):
        # One chart per estimator repeats the combined comparison; keep the document short.
        left_out += [p.stem for p in pngs if p.stem.startswith("did_")
                     and p.stem not in left_out]
    entries, used = [], set(left_out)
    for prefix, title in FIGURE_SECTIONS + (("", "Other figures"),):
        for png in pngs:
            if png.stem in used or not png.stem.startswith(prefix):
                continue
            alt_path = folder / f"{png.stem}.alt.txt"
            alt = alt_path.read_text(encoding="utf-8").strip() if alt_path.is_file() else ""
            if not alt:
                raise DataError(alt_path, "non-empty alt text for the figure",
                                found="missing or empty")
            used.add(png.stem)
            entries.append({"section": title, "name": png.stem,
                            "path": f"figures/{png.name}", "alt": alt,
                            "first_in_section": not entries or entries[-1]["section"] != title})
    return entries, left_out
