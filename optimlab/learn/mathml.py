"""TeX to MathML for the HTML optimlab writes: the math renders in any browser, from disk, with
no network and no script (Chromium, Firefox and Safari render MathML Core natively).

:func:`tex_to_mathml` converts one formula (latex2mathml, after rewriting what it lacks:
``aligned`` becomes a right/left ``array``); :func:`markdown_to_html` renders a notebook's
markdown as nbconvert does, with every formula converted; :data:`MATHML_CSS` aligns table
columns, which MathML Core leaves to CSS.
"""

from __future__ import annotations

import html
import re
from typing import Any

MATHML_CSS = """<style>
/* MathML Core ignores columnalign: CSS does it (optimlab.learn.mathml) */
mtd[columnalign="left"] { text-align: left; }
mtd[columnalign="right"] { text-align: right; }
mtd { padding: 0.15em 0.25em; }
math[display="block"] { margin: 0.5em 0; }
</style>"""

_NS_TAG = re.compile(r"<(/?)ns\d+:")
_NS_ATTR = re.compile(r'\sxmlns:ns\d+="[^"]*"')
_ALIGNED = re.compile(r"\\begin\{aligned\}(.*?)\\end\{aligned\}", re.S)
_TEXT = re.compile(r"\\(text|texttt|mathrm|operatorname)\{([^{}]*)\}")


def _aligned_to_array(m: re.Match[str]) -> str:
    """``aligned``'s rows as an ``array`` of right/left column pairs; a cell after ``&`` starts
    with ``{}`` so that a leading ``=`` keeps its spacing as a relation."""
    body = m.group(1)
    rows = re.split(r"\\\\", body)
    cols = max(row.count("&") for row in rows) + 1
    spec = "".join("rl"[i % 2] for i in range(cols))
    body = re.sub(r"(?<!\\)&", "&{}", body)
    return f"\\begin{{array}}{{{spec}}}{body}\\end{{array}}"


def _prepare(tex: str) -> str:
    tex = _ALIGNED.sub(_aligned_to_array, tex)
    # latex2mathml keeps escapes inside text verbatim (`exp\_avg`)
    return _TEXT.sub(_unescape_text, tex)


def _unescape_text(m: re.Match[str]) -> str:
    inner = re.sub(r"\\([_%&#$])", r"\1", m.group(2))
    return "\\" + m.group(1) + "{" + inner + "}"


def tex_to_mathml(tex: str, display: bool = False) -> str:
    """One formula as a ``<math>`` element; what cannot be converted stays as TeX in ``<code>``."""
    from latex2mathml.converter import convert

    try:
        return convert(_prepare(tex.strip()), display="block" if display else "inline")
    except Exception:  # a formula latex2mathml cannot parse: show its source, never fail a page
        delim = "$$" if display else "$"
        return f"<code>{html.escape(delim + tex + delim)}</code>"


def renderer_class() -> type:
    """nbconvert's markdown renderer with its math turned into MathML (nbconvert is imported
    only when this is called)."""
    from nbconvert.filters.markdown_mistune import IPythonRenderer

    class MathMLRenderer(IPythonRenderer):
        def block_math(self, body: str) -> str:
            return tex_to_mathml(body, display=True)

        def latex_environment(self, name: str, body: str) -> str:
            return tex_to_mathml(f"\\begin{{{name}}}{body}\\end{{{name}}}", display=True)

        def inline_math(self, body: str) -> str:
            return tex_to_mathml(body)

        def heading(self, text: str, level: int, **attrs: Any) -> str:
            # nbconvert adds the anchor link through ElementTree, which writes MathML with a
            # namespace prefix (`<ns0:math>`) that an HTML page does not know
            return _NS_ATTR.sub("", _NS_TAG.sub(r"<\1", super().heading(text, level, **attrs)))

    return MathMLRenderer


def markdown_to_html(source: str, **renderer_options: Any) -> str:
    """Markdown (a notebook cell's) as HTML, with MathML for its math."""
    from nbconvert.filters.markdown_mistune import MarkdownWithMath

    renderer = renderer_class()(escape=False, **renderer_options)
    return MarkdownWithMath(renderer=renderer).render(source)
