"""Text from a log, made safe for a page: every string a log carries (module names,
sites, lines of code, labels) is data from elsewhere and may hold markup.

Two routes, both here: :func:`esc` for text and attribute values that Python writes
into the page, :func:`json_data` for the data a ``<script type="application/json">``
carries, which the page's script only ever shows with ``textContent`` (never as markup).
Both first make control and invisible formatting characters visible
(:func:`rngtrace.text.printable`: a right-to-left override would show text reversed).
"""

from __future__ import annotations

import html
import json
import math
from typing import Any

from ..text import printable


def esc(text: object) -> str:
    """Text (or an attribute value in double quotes) for HTML: ``<``, ``>``, ``&`` and
    both quotes as entities, controls and invisible characters as visible escapes.

    >>> esc('<script>alert("x")</script>')
    '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;'
    >>> esc("a\\u202etxt")
    'a\\\\u202etxt'
    """
    return html.escape(printable(str(text)), quote=True)


def visible(value: Any) -> Any:
    r"""``value`` with every string in it (keys too) passed through
    :func:`~rngtrace.text.printable`, and floats that JSON cannot carry (``nan``,
    ``inf``) as text, for data the page shows.

    >>> visible({"a\x1b": [1.5, float("nan"), ("x",)]})
    {'a\\x1b': [1.5, 'nan', ['x']]}
    """
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {printable(str(k)): visible(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [v if type(v) is int else visible(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def json_data(data: Any) -> str:
    """``data`` as JSON that can sit inside ``<script type="application/json">``:
    no ``<``, ``>`` or ``&`` anywhere in it (written ``\\u003c``...), so neither
    ``</script>`` nor ``<!--`` can end or change the element; non-ASCII escaped too
    (a lone surrogate from a log stays valid JSON); strings through :func:`visible`.

    >>> json_data({"module": "</script><!--x"})
    '{"module":"\\\\u003c/script\\\\u003e\\\\u003c!--x"}'
    """
    text = json.dumps(visible(data), ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
