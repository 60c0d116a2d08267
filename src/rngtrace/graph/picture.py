"""The DOT source :func:`rngtrace.to_dot` returns: a string that also draws itself.

:class:`DotSource` is a ``str`` (everything that took DOT text before still does), with
:meth:`DotSource.svg` to render it with Graphviz's ``dot`` program and the display
hooks a notebook looks for: in Jupyter, ``rngtrace.to_dot(log)`` as a cell's last line
shows the picture, scrollable when wide, or, without Graphviz, the DOT text and how
to install Graphviz.
"""

from __future__ import annotations

import html
import shutil
import subprocess

from ..errors import GraphvizNotFound, RngtraceError

INSTALL_HINT = ("install Graphviz (apt-get install graphviz, brew install graphviz, "
                "conda install graphviz) for .svg/.png/.pdf")
TIMEOUT = 120.0  # seconds Graphviz may take to lay out one picture


class DotSource(str):
    """Graphviz DOT source, as :func:`rngtrace.to_dot` returns it: a ``str`` that
    renders itself (:meth:`svg`) and draws inline in Jupyter (``_repr_svg_``,
    ``_repr_html_``).

    >>> src = DotSource("digraph rngtrace {}")
    >>> src.startswith("digraph"), isinstance(src, str)
    (True, True)
    """

    __slots__ = ()

    def svg(self, timeout: float | None = TIMEOUT) -> str:
        """The picture as SVG text, drawn by Graphviz's ``dot`` program.

        Raises:
            GraphvizNotFound: ``dot`` is not installed (the message says how to).
            RngtraceError: Graphviz failed, or took more than ``timeout`` seconds.
        """
        exe = shutil.which("dot")
        if exe is None:
            raise GraphvizNotFound(f"Graphviz's 'dot' program was not found: {INSTALL_HINT}")
        try:
            done = subprocess.run([exe, "-Tsvg"], input=self.encode("utf-8"),
                                  capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise RngtraceError(f"Graphviz took more than {timeout:g} s to draw the "
                                "picture (rngtrace dot --depth N draws a smaller one)") from None
        if done.returncode != 0:
            err = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise RngtraceError(f"Graphviz failed: {err[-1] if err else done.returncode}")
        return done.stdout.decode("utf-8", "replace")

    def _repr_svg_(self) -> str | None:
        try:
            return self.svg()
        except RngtraceError:  # the notebook then shows _repr_html_'s text instead
            return None

    def _repr_html_(self) -> str:
        try:
            svg = self.svg()
        except RngtraceError as e:
            return (f"<p>{html.escape(str(e))}; the DOT source:</p>"
                    f"<pre style='max-height:30em;overflow:auto'>{html.escape(self)}</pre>")
        # Graphviz writes label text as XML character data (escaped); a wide picture
        # scrolls instead of shrinking
        return f"<div style='max-width:100%;overflow:auto'>{strip_prolog(svg)}</div>"


def strip_prolog(svg: str) -> str:
    """SVG text without its XML declaration and DOCTYPE, to sit inside an HTML page.

    >>> strip_prolog('<?xml version="1.0"?>\\n<!DOCTYPE svg>\\n<svg></svg>')
    '<svg></svg>'
    """
    at = svg.find("<svg")
    return svg[at:] if at >= 0 else svg
