"""Rendering `spar view`'s data into one HTML file with Jinja2.

The templates, the CSS and the JS are package files in `templates/` (`report.html.j2` with its partials,
`report.css`, `report.js`). Autoescaping is on for every template and undefined names are errors
(`StrictUndefined`). The CSS and JS are read from their files and inlined into the document, and the figures are
base64 data in it, so the output is one file that loads nothing from elsewhere and works offline.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

#: the templates' folder (package data: pyproject's [tool.setuptools.package-data]); read at each render, so a test
#: can point it elsewhere
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
REPORT = "report.html.j2"


def _as_text(value: Any) -> Any:
    """The `finalize` of every `{{ ... }}`: None as nothing, any other value escaped as `html.escape` does
    (`&quot;` and `&#x27;` for quotes, as the reports have always been written; markupsafe would write `&#34;` and
    `&#39;`, the same characters in another spelling). Markup (a macro's output) is already HTML and passes; the
    autoescape that follows leaves the escaped text alone."""
    if hasattr(value, "__html__"):
        return value
    return Markup(html.escape("" if value is None else str(value), quote=True))


def environment(folder: Path | None = None) -> Environment:
    """The Jinja2 environment of the report templates (autoescape on, strict undefined names)."""
    return Environment(loader=FileSystemLoader(str(folder or TEMPLATE_DIR)), autoescape=True,
                       undefined=StrictUndefined, finalize=_as_text, trim_blocks=True, lstrip_blocks=True)


def _inline(env: Environment, name: str, closing: str) -> Markup:
    """A CSS or JS file of the templates' folder, to be inlined unescaped: it is spar's own code, not data (HTML
    escaping would break `>` selectors and JS strings). It must not close its element early."""
    source = env.loader.get_source(env, name)[0]  # type: ignore[union-attr]
    if closing in source.lower():
        raise ValueError(f"{name} contains {closing!r}: it would end the inline element early")
    return Markup(source)


def render_report(context: dict[str, Any], folder: Path | None = None) -> str:
    """The report document from `report.html.j2` and the data of `context`."""
    env = environment(folder)
    css = _inline(env, "report.css", "</style")
    js = _inline(env, "report.js", "</script")
    return env.get_template(REPORT).render(context, css=css, js=js)
