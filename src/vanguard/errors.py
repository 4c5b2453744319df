"""Errors that tell the user which file, row and column is wrong, and what was expected."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """Bad input data.

    The message always names the file and, where known, the row and column, what was
    expected and what was found, e.g.::

        data/raw/vanguard_sites.csv: row 12, column 'type': expected one of
        PACS, MCP, EHCH, UEC, ACC; found 'PAC'

    Rows are counted as a spreadsheet user sees them: the header is row 1, the first
    data row is row 2.

    Parameters
    ----------
    file : str or pathlib.Path or None
        The file at fault (or a description such as ``"panel"`` for in-memory data).
    expected : str
        What the data should have been.
    row : int, optional
        1-based row number in the file (header = 1).
    column : str, optional
        Column name.
    found : object, optional
        The offending value.
    note : str, optional
        More context after the finding, e.g. further offending rows.
    """

    def __init__(
        self,
        file: str | Path | None,
        expected: str,
        *,
        row: int | None = None,
        column: str | None = None,
        found: object = None,
        note: str | None = None,
    ) -> None:
        self.file = str(file) if file is not None else "<data>"
        self.row = row
        self.column = column
        self.expected = expected
        self.found = found
        self.note = note
        where = []
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        msg = self.file + (": " + ", ".join(where) if where else "") + f": expected {expected}"
        if found is not None:
            msg += f"; found {found!r}"
        if note:
            msg += f" ({note})"
        super().__init__(msg)

    def __reduce__(self):
        # The default rebuilds from the message alone, which __init__ cannot take, so an
        # error raised in a worker process would turn into a TypeError in the parent.
        return (
            _rebuild,
            (type(self), self.file, self.expected, self.row, self.column, self.found, self.note),
        )


def _rebuild(cls, file, expected, row, column, found, note):
    """Unpickle a :class:`DataError` with its fields."""
    return cls(file, expected, row=row, column=column, found=found, note=note)


class DataWarning(UserWarning):
    """Input data that load but look wrong (a column name close to a known one, an
    inferred date range, ...); the message names the file and column."""


class EstimationError(ValueError):
    """A design that cannot be estimated (no treated areas, no controls, ...)."""
