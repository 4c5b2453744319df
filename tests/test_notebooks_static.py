"""Static checks of the analysis notebooks: thin, parameterised, paired and clean.

Nothing here executes a notebook (that is the pipeline's and nbval's job); every check
reads the committed ``.ipynb`` and its paired percent script.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys

import jupytext
import nbformat
import pytest

from vanguard import config, pipeline

NOTEBOOKS = sorted(config.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
EXPECTED = [name for stage in pipeline.STAGES for name in stage]
ABSOLUTE_PATH = re.compile(r"(?<![\w.])(/(home|work|tmp|Users|root|mnt|opt)/|[A-Za-z]:\\\\)")


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


@pytest.fixture(params=NOTEBOOKS, ids=lambda p: p.stem)
def notebook(request):
    return request.param, nbformat.read(request.param, as_version=4)


def test_the_numbered_notebooks_are_the_pipeline_stages():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED


def test_no_function_class_or_lambda_in_notebooks(notebook):
    path, nb = notebook
    for i, cell in enumerate(code_cells(nb)):
        tree = ast.parse(cell.source)  # also fails on IPython magics: notebooks are plain Python
        defs = [
            type(n).__name__
            for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda))
        ]
        assert not defs, f"{path.name} code cell {i}: {defs} belong in src/vanguard/"


def test_exactly_one_documented_typed_parameters_cell(notebook):
    path, nb = notebook
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0].cell_type == "code"
    params = pipeline.notebook_parameters(path)  # raises on an untyped or undocumented line
    assert "run" in params and params["run"].default == "default"
    for p in params.values():
        assert p.type in {"str", "int", "float", "bool", "list"}, (path.name, p)
        assert not (isinstance(p.default, str) and ABSOLUTE_PATH.search(p.default)), p
    # a markdown cell says what the notebook does before any code runs
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")


def test_parameters_cell_runs_in_ipython_and_defines_every_name(notebook):
    """A one-line cell such as ``run: str = "x"`` is taken by IPython for the %run magic."""
    from IPython.core.interactiveshell import InteractiveShell

    path, nb = notebook
    shell = InteractiveShell.instance()
    names = pipeline.notebook_parameters(path)
    for name in names:
        shell.user_ns.pop(name, None)
    result = shell.run_cell(pipeline.parameters_cell(nb, path), silent=True)
    assert result.success, result.error_in_exec or result.error_before_exec
    for name, p in names.items():
        assert shell.user_ns[name] == p.default, (path.name, name)


def test_papermill_documents_every_parameter(notebook):
    path, _ = notebook
    out = subprocess.run(
        [sys.executable, "-m", "papermill", "--help-notebook", str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    for name, p in pipeline.notebook_parameters(path).items():
        line = next((ln for ln in out.splitlines() if ln.strip().startswith(f"{name}:")), None)
        assert line is not None, f"{name} missing from --help-notebook of {path.name}"
        assert p.help in out, f"help text of {name} missing from --help-notebook"


def test_committed_notebooks_are_stripped_with_kernelspec(notebook):
    path, nb = notebook
    assert nb.metadata.kernelspec.name == config.KERNEL_NAME
    assert set(nb.metadata) <= {"kernelspec", "jupytext", "language_info"}
    for cell in code_cells(nb):
        assert cell.outputs == [] and cell.execution_count is None, path.name
        assert set(cell.metadata) <= {"tags"}, (path.name, dict(cell.metadata))


def test_notebooks_name_no_machine_paths(notebook):
    path, _ = notebook
    text = path.read_text(encoding="utf-8")
    assert not ABSOLUTE_PATH.search(text), ABSOLUTE_PATH.search(text).group(0)
    assert str(config.ROOT) not in text


def test_paired_script_is_in_sync(notebook):
    path, nb = notebook
    script = path.with_suffix(".py")
    assert script.is_file(), f"{script.name}: pair it with `jupytext --sync {path.name}`"
    text = jupytext.read(script)
    assert [(c.cell_type, c.source) for c in text.cells] == [
        (c.cell_type, c.source) for c in nb.cells
    ], f"{path.name} and {script.name} differ: run `jupytext --sync notebooks/*.ipynb`"
    assert text.metadata["kernelspec"]["name"] == config.KERNEL_NAME


def test_headline_cells_are_marked_for_nbval():
    """Notebooks 01-05 print rounded headline numbers that nbval compares strictly."""
    for path in NOTEBOOKS[:-1]:
        nb = nbformat.read(path, as_version=4)
        marked = [
            c
            for c in code_cells(nb)
            if c.source.lstrip().startswith("# NBVAL_CHECK_OUTPUT")
            or "\n# NBVAL_CHECK_OUTPUT" in c.source
        ]
        assert marked, f"{path.name}: no cell marked # NBVAL_CHECK_OUTPUT"
        for c in marked:
            assert "print(" in c.source, f"{path.name}: a checked cell prints its numbers"


def test_notebooks_reach_the_estimators_through_the_lazy_entry_points(notebook):
    """A kernel imports an estimation library only when it runs that estimator.

    ``vanguard.analysis`` imports pyfixest or moderndid inside the function that needs
    them (and caches the result); importing ``vanguard.did`` modules at the top of a
    notebook would load them in every kernel, whatever it estimates.
    """
    path, nb = notebook
    for i, cell in enumerate(code_cells(nb)):
        for node in ast.walk(ast.parse(cell.source)):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                assert not name.startswith(("vanguard.did", "pyfixest", "moderndid")), (
                    f"{path.name} code cell {i} imports {name}; use vanguard.analysis"
                )
