"""Drawing a graph with its Byzantine nodes, honest nodes coloured by a per-node value.

Figures are drawn on the Agg canvas directly (no pyplot, so no global backend change).
matplotlib is imported on the first call, keeping `import topologies` fast.
"""

from pathlib import Path
from typing import TYPE_CHECKING

import networkx as nx
import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

from ._checks import check_choice, check_int, check_members, check_node_ids

LAYOUTS = ("spring", "circular", "kamada_kawai", "spectral")
_BYZANTINE_COLOR = "#d62728"
_HONEST_COLOR = "#1f77b4"


def draw(
    graph: nx.Graph,
    *,
    byzantine=(),
    values=None,
    path=None,
    label: str = "value",
    title: str | None = None,
    layout: str | None = None,
    max_nodes: int = 300,
    seed: int = 0,
) -> "Figure":
    """Draw a graph: Byzantine nodes as red crosses, honest nodes coloured by `values`.

    Up to max_nodes nodes the whole graph is drawn. Beyond, the figure is a summary: the
    degree histogram (honest and Byzantine) beside a drawing of the first max_nodes nodes
    reached by breadth-first search from the highest-degree node.

    Args:
      graph: nodes 0..n-1.
      byzantine: Byzantine node ids.
      values: float[n] per-node values (e.g. final accuracy); Byzantine entries are not
        shown. None colours every honest node alike and draws no colour bar.
      path: where to save; the suffix picks the format (.png or .svg). None: do not save.
      label: the colour bar's label.
      title: the figure title.
      layout: spring, circular, kamada_kawai or spectral; None uses the nodes' `pos`
        attribute when every node has one, else spring.
      max_nodes: the most nodes drawn in full.
      seed: the spring layout's seed.

    Returns:
      The matplotlib Figure.

    Raises:
      ValueError: bad node ids, values of the wrong length, an unknown layout or suffix.

    Example:
      >>> draw(ring(12), byzantine=[0], values=np.arange(12.0), path="ring.png")  # doctest: +SKIP
    """
    n = check_node_ids("draw", graph)
    byzantine = check_members("draw", "byzantine", byzantine, n)
    max_nodes = check_int("draw", "max_nodes", max_nodes, 2, "Use max_nodes >= 2.")
    if values is not None:
        values = np.asarray(values, dtype=float)
        if values.shape != (n,):
            raise ValueError(f"draw: values must have shape ({n},), one per node; got {values.shape}.")
    if path is not None and Path(path).suffix.lower() not in (".png", ".svg"):
        raise ValueError(f"draw: path {str(path)!r} must end in .png or .svg.")
    if layout is not None:
        check_choice("draw", "layout", layout, LAYOUTS)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 5) if n > max_nodes else (7, 6))
    FigureCanvasAgg(figure)
    if n > max_nodes:
        hist_axes, graph_axes = figure.subplots(1, 2, width_ratios=(1, 1.4))
        _degree_histogram(hist_axes, graph, byzantine)
        shown = _sample(graph, max_nodes)
        graph_axes.set_title(f"{max_nodes} of {n} nodes (breadth-first from the largest hub)", fontsize=9)
    else:
        graph_axes, shown = figure.subplots(), graph
    _draw_nodes(figure, graph_axes, shown, byzantine, values, label, layout, seed)
    if title:
        figure.suptitle(title)
    if path is not None:
        figure.savefig(path, dpi=150, bbox_inches="tight")
    return figure


def _sample(graph: nx.Graph, size: int) -> nx.Graph:
    """The subgraph induced by the first `size` nodes of a BFS from the top-degree node,
    followed by the nodes it cannot reach, by id."""
    undirected = graph.to_undirected(as_view=True)
    hub = max(undirected.degree, key=lambda item: (item[1], -item[0]))[0]
    order = [hub, *(v for _, v in nx.bfs_edges(undirected, hub))]
    reached = set(order)
    order += [v for v in sorted(undirected) if v not in reached]
    return graph.subgraph(order[:size])


def _degree_histogram(axes, graph: nx.Graph, byzantine: list[int]) -> None:
    degree = dict(graph.in_degree if graph.is_directed() else graph.degree)
    excluded = set(byzantine)
    honest = [d for v, d in degree.items() if v not in excluded]
    bins = np.arange(max(degree.values()) + 2) - 0.5
    axes.hist(
        [honest, [degree[v] for v in byzantine]],
        bins=bins,
        stacked=True,
        color=[_HONEST_COLOR, _BYZANTINE_COLOR],
        label=["honest", "Byzantine"],
    )
    axes.set_yscale("log")
    axes.set_xlabel("in-degree" if graph.is_directed() else "degree")
    axes.set_ylabel("nodes")
    axes.legend(fontsize=8)


def _positions(graph: nx.Graph, layout: str | None, seed: int) -> dict:
    if layout is None and all("pos" in data for _, data in graph.nodes(data=True)):
        return {v: data["pos"][:2] for v, data in graph.nodes(data=True)}
    if layout in (None, "spring"):
        return nx.spring_layout(graph, seed=seed)
    return {
        "circular": nx.circular_layout,
        "kamada_kawai": nx.kamada_kawai_layout,
        "spectral": nx.spectral_layout,
    }[layout](graph)


def _draw_nodes(figure, axes, graph, byzantine, values, label, layout, seed) -> None:
    positions = _positions(graph, layout, seed)
    size = max(12.0, min(300.0, 6000.0 / graph.number_of_nodes()))
    arrows = {"arrows": True, "arrowsize": 6} if graph.is_directed() else {"arrows": False}
    nx.draw_networkx_edges(
        graph, positions, ax=axes, edge_color="#bbbbbb", width=0.6, node_size=size, **arrows
    )
    excluded = set(byzantine)
    bad = [v for v in graph if v in excluded]
    good = [v for v in graph if v not in excluded]
    if values is None:
        nx.draw_networkx_nodes(
            graph, positions, nodelist=good, node_color=_HONEST_COLOR, node_size=size, ax=axes
        )
    else:
        colours = values[good]
        finite = colours[np.isfinite(colours)]
        low, high = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
        drawn = nx.draw_networkx_nodes(
            graph,
            positions,
            nodelist=good,
            node_color=colours,
            cmap="viridis",
            vmin=low,
            vmax=high,
            node_size=size,
            ax=axes,
        )
        figure.colorbar(drawn, ax=axes, label=label, shrink=0.8)
    nx.draw_networkx_nodes(
        graph,
        positions,
        nodelist=bad,
        node_color=_BYZANTINE_COLOR,
        node_shape="X",
        node_size=size * 1.6,
        ax=axes,
    )
    from matplotlib.lines import Line2D

    handles = [
        Line2D(
            [],
            [],
            marker="o",
            linestyle="",
            color=_HONEST_COLOR if values is None else "#35b779",
            label="honest",
        ),
        Line2D([], [], marker="X", linestyle="", color=_BYZANTINE_COLOR, markersize=9, label="Byzantine"),
    ]
    # below the drawing, so that it never hides a node
    axes.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncols=2, fontsize=8, frameon=False)
    axes.set_axis_off()
