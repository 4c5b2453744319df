"""The report's narrative, kept in an editable text template.

``templates/report_text.md`` holds every paragraph of prose the report prints, in
sections headed ``## <name>``. Researchers edit it without touching Python: the numbers
come in as ``{{ placeholders }}`` filled from the results files (Jinja syntax; ``{% if
... %}`` blocks let a paragraph depend on the findings). Within a section, a blank line
separates paragraphs and a line starting ``- `` is a list item.
"""

from __future__ import annotations

import re
from pathlib import Path

import jinja2

TEXT_TEMPLATE = Path(__file__).resolve().parent / "templates" / "report_text.md"
SECTION = re.compile(r"^## +([a-z_]+) *$", re.M)


def read_sections(path: Path = TEXT_TEMPLATE) -> dict[str, str]:
    """The template's sections, name -> raw text (comments ``<!-- -->`` removed).

    Raises
    ------
    ValueError
        If a section name repeats or the file has no section.
    """
    text = re.sub(r"<!--.*?-->", "", path.read_text(encoding="utf-8"), flags=re.S)
    parts = SECTION.split(text)
    if len(parts) < 3:
        raise ValueError(f"{path.name}: no '## <name>' section found")
    out: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in out:
            raise ValueError(f"{path.name}: section {name!r} appears twice")
        out[name] = body
    return out


def _blocks(text: str) -> list[dict]:
    blocks: list[dict] = []
    para: list[str] = []

    def flush():
        if para:
            blocks.append({"kind": "p", "text": " ".join(para)})
            para.clear()

    for line in text.splitlines():
        s = line.strip()
        if not s:
            flush()
        elif s.startswith("- "):
            flush()
            blocks.append({"kind": "li", "text": s[2:].strip()})
        elif blocks and blocks[-1]["kind"] == "li" and not para and line.startswith("  "):
            blocks[-1]["text"] += " " + s  # a list item continued on the next line
        else:
            para.append(s)
    flush()
    return blocks


def render_text(context: dict, path: Path = TEXT_TEMPLATE) -> dict[str, list[dict]]:
    """Fill the prose template with a run's numbers.

    Parameters
    ----------
    context : dict
        Values the template's placeholders name (formatted strings, numbers, lists).
    path : pathlib.Path
        The template (default ``templates/report_text.md``).

    Returns
    -------
    dict
        Section name -> list of blocks ``{"kind": "p" | "li", "text": str}``.

    Raises
    ------
    jinja2.UndefinedError
        If the template names a value the context lacks (a typo in a placeholder stops
        the report instead of printing nothing).
    """
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False,
                             trim_blocks=True, lstrip_blocks=True)
    return {name: _blocks(env.from_string(body).render(**context))
            for name, body in read_sections(path).items()}
