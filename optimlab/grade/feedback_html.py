"""The feedback page's exporter: nbconvert's HTML with the math as MathML, and no MathJax.

nbgrader's feedback template loads MathJax from a CDN, so a learner who opens their feedback
from disk without a network sees raw TeX. :class:`FeedbackExporter` (the course's
``nbgrader_config.py`` makes it ``GenerateFeedback.exporter_class``) renders every formula of
the markdown cells to MathML when the feedback is written (:mod:`optimlab.learn.mathml`): no
script, no asset beside the page, nothing fetched.
"""

from __future__ import annotations

import importlib.util
import re
from typing import Any

from jinja2 import pass_context
from nbconvert.exporters import HTMLExporter

from ..learn.mathml import MATHML_CSS, renderer_class

_MATHJAX = re.compile(r"\s*<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->",
                      re.S)


def available() -> bool:
    """Whether latex2mathml is installed (without it the page stays nbconvert's, MathJax and
    all, rather than failing every student's feedback)."""
    return importlib.util.find_spec("latex2mathml") is not None


class FeedbackExporter(HTMLExporter):
    """HTMLExporter whose markdown math is MathML and whose page loads no MathJax."""

    @pass_context
    def markdown2html(self, context: Any, source: str) -> str:
        from nbconvert.filters.markdown_mistune import MarkdownWithMath

        if not available():
            return HTMLExporter.markdown2html(self, context, source)
        cell = context.get("cell", {})
        path = context.get("resources", {}).get("metadata", {}).get("path", "")
        renderer = renderer_class()(
            escape=False, attachments=cell.get("attachments", {}),
            embed_images=self.embed_images, path=path, anchor_link_text=self.anchor_link_text,
            exclude_anchor_links=self.exclude_anchor_links, **self.lexer_options)
        return MarkdownWithMath(renderer=renderer).render(source)

    def from_notebook_node(self, nb: Any, resources: Any = None, **kw: Any) -> tuple[str, Any]:
        output, resources = super().from_notebook_node(nb, resources, **kw)
        return (without_mathjax(output) if available() else output), resources


def without_mathjax(page: str) -> str:
    """An nbconvert HTML page without its MathJax script, with the MathML styles instead."""
    page = _MATHJAX.sub("", page, count=1)
    return page.replace("</head>", MATHML_CSS + "\n</head>", 1)
