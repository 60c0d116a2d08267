"""Pictures of RNG consumption: a log (or a diff) as a networkx graph and as DOT.

:func:`to_networkx` turns a :class:`~rngtrace.Log` into a ``networkx.DiGraph`` of modules
(the module tree plus the order in which modules consumed each generator's stream);
:func:`to_dot` draws a log or a :class:`~rngtrace.diffing.Diff` with Graphviz; :func:`save`
writes the DOT source or, when Graphviz's ``dot`` program is installed, an SVG/PNG/PDF.
What :func:`to_dot` returns, a :class:`DotSource`, is a ``str`` that draws inline in a
Jupyter notebook (:mod:`.picture`).
The graphs are built in :mod:`.build`; the drawing itself (clusters, fills, arrows,
legend) is in :mod:`.dot`. networkx and graphviz are imported there only, where used.

>>> import torch, rngtrace
>>> with rngtrace.record() as log:
...     net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
>>> g = rngtrace.to_networkx(log)
>>> g.graph["streams"]["default:cpu"], g.nodes["0"]["draws"]
(['0', '1'], 2)
>>> "digraph" in rngtrace.to_dot(log)
True
"""

from .build import FORMATS, GraphvizNotFound, diff_graph, node_key, save, to_dot, to_networkx
from .dot import OUTSIDE, PHASE_FILL, STATUS
from .picture import DotSource

__all__ = ["FORMATS", "OUTSIDE", "PHASE_FILL", "STATUS", "DotSource", "GraphvizNotFound",
           "diff_graph", "node_key", "save", "to_dot", "to_networkx"]
