"""Values of notebook parameters: what each one may be, checked before anything runs.

A parameter reaches a notebook by one of two routes: a parameter set (``params/*.yml``,
read by :mod:`vanguard.pipeline`, which checks every value before the first kernel
starts) or ``papermill -p name value`` on a single notebook. The second route bypasses
the runner, and papermill only logs a warning for a name the notebook does not declare
and passes ``-p n_boot abc`` on as the string ``"abc"``. :func:`check_parameters`,
called in the cell after the parameters cell, closes that route::

    from vanguard.params import check_parameters; check_parameters("03_did", globals())

Rules are keyed by parameter name (:data:`RULES`), so the same name means the same
thing in every notebook; grid values reach notebooks as the singular name (``outcome``),
so a grid list is checked value by value against the singular rule.

Parameter sets are read with :class:`UniqueKeyLoader`, which refuses a key given twice
in one mapping instead of silently keeping the last value.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from vanguard.errors import DataError


class ParameterError(DataError):
    """A parameter whose name or value is not allowed; the message names the parameter."""


# --- value rules --------------------------------------------------------------------

DATA_SOURCES: tuple[str, ...] = ("synthetic", "nhs_mar", "custom")
PUBLIC_DATA_SOURCES: frozenset[str] = frozenset({"synthetic", "nhs_mar"})
"""Sources whose panel may be published in full: the synthetic England is simulated and
the Monthly Activity Return is already published by NHS England. A custom panel is
assumed to be confidential."""

INFERENCE: tuple[str, ...] = ("cluster", "wild_bootstrap", "randomisation", "auto")
FREQUENCIES: tuple[str, ...] = ("M", "Q", "Y", "FY")
EVENT_UNITS: tuple[str, ...] = ("month", "quarter")
ESTIMATORS: tuple[str, ...] = ("twfe", "twfe_poisson", "cs_never", "cs_notyet", "imputation")
"""Kept here rather than imported from :mod:`vanguard.analysis`, which pulls in the
estimation libraries: a check must be cheap enough to run before anything else."""

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_OUTCOME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Rule:
    """What one parameter may hold: a predicate and the words for the error message."""

    check: Callable[[Any], bool]
    expected: str


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v  # not NaN


def _int_in(lo: int, hi: int) -> Rule:
    return Rule(lambda v: _is_int(v) and lo <= v <= hi, f"a whole number from {lo} to {hi}")


def _one_of(options: tuple[str, ...]) -> Rule:
    return Rule(lambda v: isinstance(v, str) and v in options, f"one of {list(options)}")


def _list_of(rule: Rule, *, allow_empty: bool = False) -> Rule:
    def check(v: Any) -> bool:
        if not isinstance(v, list) or (not v and not allow_empty):
            return False
        # a repeated entry would run the same analysis twice under one label
        hashable = [repr(x) for x in v]
        return len(set(hashable)) == len(hashable) and all(rule.check(x) for x in v)

    return Rule(check, f"a non-empty list without repeats, each {rule.expected}")


def _month(v: Any) -> bool:
    if not isinstance(v, str):
        return False
    if v == "":
        return True
    m = _MONTH.match(v)
    return bool(m and 1990 <= int(m.group(1)) <= 2100 and 1 <= int(m.group(2)) <= 12)


def _data_path(v: Any) -> bool:
    # custom files are named relative to data/raw/ or given in full (the run manifest
    # records the sha256 of both); a relative path climbing out with `..` would make the
    # run depend on the folder it happened to start from
    if not isinstance(v, str):
        return False
    return v == "" or Path(v).is_absolute() or ".." not in Path(v).parts


_OUTCOME_RULE = Rule(lambda v: isinstance(v, str) and bool(_OUTCOME.match(v)),
                     "a column name (letters, digits and _)")
_GROUP_RULE = Rule(
    lambda v: isinstance(v, str) and bool(re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", v))
    and v not in ("control", "both"),
    "a treatment group name (letters, digits and _; the vanguard groups are "
    "population_based, care_home and uec)",
)
_ESTIMATOR_RULE = _one_of(ESTIMATORS)
_PATH_WORDS = "a path relative to data/raw/ without '..', a full path, or empty"
_DRAWS = _int_in(1, 1_000_000)

RULES: dict[str, Rule] = {
    "run": Rule(lambda v: isinstance(v, str) and bool(_RUN_NAME.match(v)),
                "a plain run name (letters, digits, _ - .)"),
    "data_source": _one_of(DATA_SOURCES),
    "custom_panel": Rule(_data_path, _PATH_WORDS),
    "custom_sites": Rule(_data_path, _PATH_WORDS),
    "custom_site_areas": Rule(_data_path, _PATH_WORDS),
    "custom_groups": Rule(_data_path, _PATH_WORDS),
    "mar_end": Rule(_month, 'a month "YYYY-MM" (month 01-12, year 1990-2100) or ""'),
    "mar_mixed": _one_of(("exclude", "keep")),
    "mar_quality": _one_of(("drop", "keep")),
    "mde_draws": _DRAWS,
    "first_month": Rule(_month, 'a month "YYYY-MM" (month 01-12, year 1990-2100) or ""'),
    "publish_panel": Rule(lambda v: isinstance(v, bool), "true or false"),
    "outcome": _OUTCOME_RULE,
    "outcomes": _list_of(_OUTCOME_RULE),
    "group": _GROUP_RULE,
    "groups": _list_of(_GROUP_RULE),
    "estimator": _ESTIMATOR_RULE,
    "estimators": _list_of(_ESTIMATOR_RULE),
    "scale": _one_of(("rate", "log", "poisson", "count")),
    "pre_months": _int_in(1, 240),
    "freq": _one_of(FREQUENCIES),
    "inference": _one_of(INFERENCE),
    "inference_variants": _list_of(_one_of(INFERENCE[:-1])),
    "n_boot": _DRAWS,
    "n_perm": _DRAWS,
    "n_sims": _DRAWS,
    "seed": _int_in(0, 2**32 - 1),
    "unit": _one_of(EVENT_UNITS),
    "leads": _int_in(1, 120),
    "lags": _int_in(1, 120),
    "mbar": _list_of(Rule(lambda v: _is_number(v) and 0 <= v <= 100,
                          "a number from 0 to 100")),
    "placebo_shifts": _list_of(Rule(lambda v: _is_int(v) and -240 <= v < 0,
                                    "a negative whole number of months (-240 to -1)")),
    "powers": _list_of(Rule(lambda v: _is_number(v) and 0 < v < 1,
                            "a number between 0 and 1")),
    "hoped_for_pct": Rule(lambda v: _is_number(v) and 0 < v < 100,
                          "a percentage between 0 and 100"),
    "require_all": Rule(lambda v: isinstance(v, bool), "true or false"),
    "allow_incomplete": Rule(lambda v: isinstance(v, bool), "true or false"),
}
"""Parameter name -> the values it may take. A name without a rule is checked for its
declared type only."""

_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "list": (list,),
    "dict": (dict,),
}
_TYPE_WORDS = {
    "str": "text",
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "list": "a list",
    "dict": "a mapping",
}


def type_ok(value: Any, type_name: str) -> bool:
    """Whether ``value`` has the type a parameters cell declares (``bool`` is not an int).

    Parameters
    ----------
    value : object
    type_name : str
        The annotation of the parameter (``str``, ``int``, ``float``, ``bool``, ``list``
        or ``dict``; any other annotation accepts every value).

    Returns
    -------
    bool
    """
    allowed = _TYPES.get(type_name)
    if allowed is None:
        return True
    if isinstance(value, bool) and type_name != "bool":
        return False
    return isinstance(value, allowed)


def value_problem(name: str, value: Any, type_name: str | None = None) -> str | None:
    """Why ``value`` is not allowed for parameter ``name``, or None when it is.

    Parameters
    ----------
    name : str
        Parameter name (a key of :data:`RULES`, or any other name).
    value : object
    type_name : str, optional
        The type the notebook declares; checked first.

    Returns
    -------
    str or None
        ``"expected <what>; found <value>"``.
    """
    if type_name is not None and not type_ok(value, type_name):
        return f"expected {_TYPE_WORDS.get(type_name, type_name)} ({type_name}); found {value!r}"
    rule = RULES.get(name)
    if rule is not None and not rule.check(value):
        return f"expected {rule.expected}; found {value!r}"
    return None


# --- YAML ---------------------------------------------------------------------------


class UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key repeated in one mapping.

    PyYAML keeps the last of two equal keys without a word, so ``n_boot: 99`` followed
    further down by ``n_boot: 9`` would silently run with 9.
    """

    def construct_mapping(self, node, deep=False):  # noqa: D102 - see the class docstring
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: let the base class report it
                continue
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice (lines {first} and {line})",
                    key_node.start_mark,
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: str | Path) -> Any:
    """Read a YAML file with :class:`UniqueKeyLoader`.

    Parameters
    ----------
    path : str or pathlib.Path

    Returns
    -------
    object
        The parsed document.

    Raises
    ------
    DataError
        If the file is not valid YAML or repeats a key (the message names the key and
        its lines).
    """
    path = Path(path)
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=UniqueKeyLoader)  # noqa: S506
    except yaml.YAMLError as exc:
        raise DataError(path, f"valid YAML without repeated keys ({exc})") from exc


# --- the check inside a notebook ----------------------------------------------------


def injected_names(history: list[str] | None = None) -> dict[str, Any]:
    """Parameters papermill injected into the running kernel, read from its input history.

    papermill adds a cell whose source starts with ``# Parameters`` right after the
    parameters cell; IPython keeps every executed cell source in ``In``.

    Parameters
    ----------
    history : list of str, optional
        Cell sources in execution order (default: the running IPython's ``In``).

    Returns
    -------
    dict
        Name -> value of the last injected cell (empty outside papermill).
    """
    if history is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return {}
        shell = get_ipython()
        history = list(shell.user_ns.get("In", [])) if shell is not None else []
    for source in reversed(history):
        if not source.lstrip().startswith("# Parameters"):
            continue
        try:
            tree = ast.parse(source)
        except SyntaxError:
            return {}
        out: dict[str, Any] = {}
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(
                node.targets[0], ast.Name
            ):
                try:
                    out[node.targets[0].id] = ast.literal_eval(node.value)
                except ValueError:
                    out[node.targets[0].id] = ast.unparse(node.value)
        return out
    return {}


def check_parameters(
    notebook: str,
    namespace: Mapping[str, Any],
    *,
    notebooks_dir: str | Path | None = None,
    injected: Mapping[str, Any] | None = None,
) -> None:
    """Refuse unknown parameter names and bad values inside a running notebook.

    Call it in the first cell after the parameters cell::

        from vanguard.params import check_parameters; check_parameters("03_did", globals())

    Parameters
    ----------
    notebook : str
        The notebook's name without suffix (its parameters cell is read from
        ``<notebooks_dir>/<notebook>.ipynb``, with the parser the runner uses).
    namespace : mapping
        The kernel's ``globals()``: the value each parameter has now.
    notebooks_dir : str or pathlib.Path, optional
        Default :data:`vanguard.config.NOTEBOOKS`.
    injected : mapping, optional
        Names papermill injected (default: read from the kernel, :func:`injected_names`).

    Raises
    ------
    ParameterError
        Naming every unknown parameter and every bad value, each with what was expected.
    """
    from vanguard import config
    from vanguard.pipeline import notebook_parameters

    folder = Path(notebooks_dir) if notebooks_dir is not None else config.NOTEBOOKS
    declared = notebook_parameters(folder / f"{notebook}.ipynb")
    given = dict(injected_names() if injected is None else injected)
    problems = [
        f"parameter {name!r} is not declared by {notebook} (declared: {', '.join(declared)})"
        for name in given
        if name not in declared
    ]
    for name, p in declared.items():
        if name not in namespace:
            continue
        why = value_problem(name, namespace[name], p.type)
        if why:
            problems.append(f"parameter {name!r}: {why}")
    if problems:
        raise ParameterError(f"{notebook}.ipynb", "valid parameters:\n  " + "\n  ".join(problems))


def check_executed_notebook(path: str | Path) -> list[str]:
    """Problems with the parameters papermill injected into an executed notebook.

    For a notebook run outside the pipeline (``papermill -p ...``): the cell tagged
    ``injected-parameters`` is compared with the notebook's own ``parameters`` cell.

    Parameters
    ----------
    path : str or pathlib.Path
        An executed ``.ipynb``.

    Returns
    -------
    list of str
        One line per injected name the notebook does not declare and per value its
        type or rule refuses; empty when everything is allowed (or nothing was injected).

    Raises
    ------
    DataError
        If the notebook's parameters cell cannot be parsed.
    """
    import nbformat

    from vanguard.pipeline import notebook_parameters

    declared = notebook_parameters(path)
    nb = nbformat.read(path, as_version=4)
    cells = [c.source for c in nb.cells
             if "injected-parameters" in c.get("metadata", {}).get("tags", [])]
    given = injected_names(["# Parameters\n" + c for c in cells])
    name = Path(path).name
    problems = [f"{name}: parameter {k!r} is not declared" for k in given if k not in declared]
    for k, v in given.items():
        if k in declared:
            why = value_problem(k, v, declared[k].type)
            if why:
                problems.append(f"{name}: parameter {k!r}: {why}")
    return problems
