"""Publication figures from plain numpy results: learning curves, heatmaps, x-y comparisons
and graphs coloured by per-node accuracy.

This module knows nothing of scenarios or result databases: the caller reduces results to
arrays and passes them here. Every figure is built on a bare ``matplotlib.figure.Figure``
(no pyplot, so no global backend change) inside ``matplotlib.rc_context(STYLE)``, and every
public function writes one file per format and returns the written paths.

    >>> curve = Curve("mean", rounds=np.array([0, 50, 100]), mean=np.array([[0.1], [0.6], [0.8]]))
    >>> learning_curves([curve], "figures/quickstart/accuracy")  # doctest: +SKIP
    [PosixPath('figures/quickstart/accuracy.png'), PosixPath('figures/quickstart/accuracy.svg')]
"""

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import networkx as nx
import numpy as np
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.patheffects import withStroke

import topologies

from . import plot_style as style
from .plot_checks import FORMATS, check_formats, check_items, repeats, vector
from .plot_style import STYLE


_COLUMN = 3.4  # inches: one column of a two-column paper
_PAGE = 7.0  # inches: the full text width
_HEIGHT = 2.6
_GRAPH_SCALE = 0.5  # topologies.draw's 7 x 6 (or 11 x 5 summary) inches, to paper size
_MARK_COLOR = "#D55E00"
_MISSING_COLOR = "#f2f2f2"
_METADATA = {"png": {}, "svg": {"Date": None}, "pdf": {"CreationDate": None}}


# eq=False: arrays have no single truth value, so instances compare by identity.
@dataclasses.dataclass(frozen=True, eq=False)
class Curve:
    """One learning curve: a metric at evaluation rounds, for every repeat of a run.

    Args:
      label: the legend entry.
      rounds: int[E] evaluation rounds, strictly increasing.
      mean: float[E, R] the honest nodes' mean of the metric per evaluation and repeat.
      low: float[E, R] the honest minimum (the worst honest node), or None.

    Raises:
      ValueError: arrays of the wrong rank or of mismatched shapes, rounds not increasing.

    Example:
      >>> Curve("krum", rounds=np.array([0, 10]), mean=np.array([[0.1, 0.1], [0.5, 0.6]]))  # doctest: +SKIP
    """

    label: str
    rounds: np.ndarray
    mean: np.ndarray
    low: np.ndarray | None = None

    def __post_init__(self):
        where = f"Curve {self.label!r}"
        rounds = vector(where, "rounds", self.rounds)
        if not np.all(np.diff(rounds) > 0):
            raise ValueError(f"{where}: rounds must be strictly increasing; got {rounds.tolist()}.")
        mean = repeats(where, "mean", self.mean, len(rounds), "rounds")
        object.__setattr__(self, "rounds", rounds)
        object.__setattr__(self, "mean", mean)
        if self.low is not None:
            low = repeats(where, "low", self.low, len(rounds), "rounds")
            if low.shape != mean.shape:
                raise ValueError(f"{where}: low has shape {low.shape} but mean has {mean.shape}; they must match.")
            object.__setattr__(self, "low", low)


@dataclasses.dataclass(frozen=True, eq=False)
class Series:
    """One line of a `versus` plot: a final metric at several x values, for every repeat.

    Args:
      label: the legend entry.
      x: float[P] the x values (any order, finite).
      y: float[P, R] the metric at each x for each repeat; NaN marks a missing run.
      connect: join the points with a line (False: markers only, e.g. one topology's point
        cloud against spectral gap).

    Raises:
      ValueError: arrays of the wrong rank or of mismatched shapes, x not finite.

    Example:
      >>> Series("median", x=np.array([0.0, 0.1, 0.2]), y=np.array([[0.9], [0.8], [0.4]]))  # doctest: +SKIP
    """

    label: str
    x: np.ndarray
    y: np.ndarray
    connect: bool = True

    def __post_init__(self):
        where = f"Series {self.label!r}"
        x = vector(where, "x", self.x)
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{where}: x must be finite; got {x.tolist()}.")
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", repeats(where, "y", self.y, len(x), "x"))


def save(figure: Figure, stem, formats: Sequence[str] = FORMATS[:2]) -> list[Path]:
    """Write `figure` as `stem.<format>` for each format, under STYLE's savefig settings.

    Args:
      figure: a matplotlib Figure (one of this module's, or `topologies.draw`'s).
      stem: the path without a suffix; missing parent folders are created. A stem may hold
        dots (``acc_f0.25``): the format is appended, never substituted.
      formats: names from FORMATS.

    Returns:
      The written paths, in the order of `formats`.

    Raises:
      ValueError: an unknown or empty `formats`, or a stem ending in a format suffix.

    Example:
      >>> save(figure, "figures/ring/accuracy", formats=("pdf",))  # doctest: +SKIP
    """
    formats = check_formats("save", formats)
    stem = Path(stem)
    if stem.suffix.lstrip(".").lower() in FORMATS:
        raise ValueError(
            f"save: stem {str(stem)!r} ends in a format suffix; pass the path without it "
            f"({str(stem.with_suffix(''))!r}) and choose the formats with formats=."
        )
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_name(f"{stem.name}.{name}") for name in formats]
    with matplotlib.rc_context(STYLE):
        for path, name in zip(paths, formats, strict=True):
            figure.savefig(path, format=name, metadata=_METADATA[name])
    return paths


def learning_curves(
    curves: Sequence[Curve],
    stem,
    *,
    metric: str = "test accuracy",
    title: str | None = None,
    log: bool = False,
    legend_title: str | None = None,
    formats: Sequence[str] = FORMATS[:2],
) -> list[Path]:
    """Plot a metric over rounds: the honest mean, and the worst honest node when known.

    Each line is the average over repeats, with a band from the minimum to the maximum over
    repeats (no band for a single repeat). The second panel, drawn when any curve has
    `low`, shows the worst honest node on the same y axis.

    Args:
      curves: the curves, in legend order; each keeps its colour in both panels.
      stem: the path without a suffix (see `save`).
      metric: the y axis label.
      title: the figure title.
      log: a logarithmic y axis (e.g. consensus distance).
      legend_title: what the curves are (e.g. "aggregator"), heading the legend.
      formats: names from FORMATS.

    Returns:
      The written paths.

    Raises:
      ValueError: no curves, an item that is not a Curve, or an unknown format.

    Example:
      >>> learning_curves([Curve("mean", rounds, mean, low)], "figures/ring/accuracy")  # doctest: +SKIP
    """
    formats = check_formats("learning_curves", formats)
    figure = _learning_curves_figure(curves, metric=metric, title=title, log=log, legend_title=legend_title)
    return save(figure, stem, formats)


def heatmap(
    values,
    row_labels: Sequence[str],
    column_labels: Sequence[str],
    stem,
    *,
    title: str | None = None,
    metric: str = "final honest accuracy",
    mark_worst: str | None = "row",
    higher_is_better: bool = True,
    xlabel: str | None = None,
    ylabel: str | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    chance: float | None = None,
    notes=None,
    formats: Sequence[str] = FORMATS[:2],
) -> list[Path]:
    """Draw a table of values (e.g. rule x attack) as an annotated viridis heatmap.

    Every cell shows its value with 2 decimals; a NaN cell is hatched and reads "n/a", or
    its note (e.g. "diverged": a run whose model became non-finite has no value). The
    worst cell of each row (or column) is boxed: the minimum when `higher_is_better`, else
    the maximum, NaN ignored; exact ties are all boxed, and an all-NaN line has none. The
    colours span [vmin, vmax] (each end defaults to the data's); values beyond are drawn in
    the end colour and the colour bar gets an arrow on that side. A chance level is a
    white line edged in black across the colour bar (visible on every colour), named in the
    legend.

    Args:
      values: float[r, c], NaN for a missing cell.
      row_labels: r labels, top to bottom.
      column_labels: c labels, left to right (rotated when long).
      stem: the path without a suffix (see `save`).
      title: the figure title.
      metric: the colour bar label.
      mark_worst: "row", "column" or None (no box).
      higher_is_better: whether a larger value is better.
      xlabel: the x axis label (what the columns are).
      ylabel: the y axis label (what the rows are).
      vmin: the value of the lowest colour (None: the smallest value).
      vmax: the value of the highest colour (None: the largest value).
      chance: the value to mark on the colour bar (e.g. 0.1, chance accuracy on 10
        classes), or None.
      notes: None, or r x c strings (or None) written in the NaN cells instead of "n/a".
      formats: names from FORMATS.

    Returns:
      The written paths.

    Raises:
      ValueError: values not 2-D or not [len(row_labels), len(column_labels)], notes of
        another shape or on a cell that has a value, an unknown mark_worst or format,
        vmin >= vmax.

    Example:
      >>> heatmap(accuracy, ["mean", "krum"], ["alie", "ipm", "none"], "figures/rules")  # doctest: +SKIP
    """
    formats = check_formats("heatmap", formats)
    figure, _ = _heatmap_figure(
        values,
        row_labels,
        column_labels,
        title=title,
        metric=metric,
        mark_worst=mark_worst,
        higher_is_better=higher_is_better,
        xlabel=xlabel,
        ylabel=ylabel,
        vmin=vmin,
        vmax=vmax,
        chance=chance,
        notes=notes,
    )
    return save(figure, stem, formats)


def versus(
    series: Sequence[Series],
    stem,
    *,
    xlabel: str,
    ylabel: str = "final honest accuracy",
    title: str | None = None,
    log_x: bool = False,
    legend_title: str | None = None,
    formats: Sequence[str] = FORMATS[:2],
    log_y: bool = False,
) -> list[Path]:
    """Plot a final metric against a parameter (Byzantine fraction, spectral gap, ...).

    Each series shows its mean over repeats at every x (sorted), with markers and error bars
    from the minimum to the maximum over repeats (none for a single repeat), joined by a
    line when `connect`.

    Args:
      series: the series, in legend order.
      stem: the path without a suffix (see `save`).
      xlabel: the x axis label.
      ylabel: the y axis label.
      title: the axes title.
      log_x: a logarithmic x axis (e.g. the number of nodes); every x must be > 0.
      log_y: a logarithmic y axis (e.g. an averaging error spanning decades); values <= 0
        are not drawn.
      legend_title: what the series are (e.g. "aggregator"), heading the legend.
      formats: names from FORMATS.

    Returns:
      The written paths.

    Raises:
      ValueError: no series, an item that is not a Series, an unknown format, or an
        x <= 0 with `log_x`.

    Example:
      >>> versus([Series("median", fractions, accuracy)], "figures/f", xlabel="Byzantine fraction")  # doctest: +SKIP
    """
    formats = check_formats("versus", formats)
    figure = _versus_figure(series, xlabel=xlabel, ylabel=ylabel, title=title, log_x=log_x, legend_title=legend_title,
                            log_y=log_y)
    return save(figure, stem, formats)


def graph_accuracy(
    graph: nx.Graph,
    accuracy,
    byzantine,
    stem,
    *,
    title: str | None = None,
    formats: Sequence[str] = FORMATS[:2],
) -> list[Path]:
    """Draw the graph with honest nodes coloured by final accuracy and Byzantine nodes marked.

    The drawing is `topologies.draw`'s (layout, large-graph summary and all), made under
    STYLE and saved by `save`.

    Args:
      graph: nodes 0..n-1.
      accuracy: float[n] per-node final accuracy; NaN where, and only where, the node is
        Byzantine is allowed.
      byzantine: the Byzantine node ids.
      stem: the path without a suffix (see `save`).
      title: the figure title.
      formats: names from FORMATS.

    Returns:
      The written paths.

    Raises:
      ValueError: accuracy not [n], NaN at an honest node, bad node ids, an unknown format.

    Example:
      >>> graph_accuracy(topologies.ring(12), accuracy, [0, 6], "figures/ring/nodes")  # doctest: +SKIP
    """
    formats = check_formats("graph_accuracy", formats)
    return save(_graph_accuracy_figure(graph, accuracy, byzantine, title=title), stem, formats)


def _learning_curves_figure(curves, *, metric, title, log, legend_title=None) -> Figure:
    """The learning-curves figure; see `learning_curves`."""
    curves = check_items("learning_curves", "curves", curves, Curve)
    panels = [("honest mean", [curve.mean for curve in curves])]
    if any(curve.low is not None for curve in curves):
        panels.append(("worst honest node", [curve.low for curve in curves]))
    with matplotlib.rc_context(STYLE):
        figure = style.figure((_COLUMN if len(panels) == 1 else _PAGE, _HEIGHT))
        axes = figure.subplots(1, len(panels), sharey=True, squeeze=False)[0]
        for panel, (name, metrics) in zip(axes, panels, strict=True):
            for index, (curve, values) in enumerate(zip(curves, metrics, strict=True)):
                if values is not None:
                    _band_line(panel, index, curve.label, curve.rounds, values)
            panel.set_xlabel("round")
            if len(panels) > 1:
                panel.set_title(name)
            if log:
                panel.set_yscale("log")
        axes[0].set_ylabel(metric)
        style.legend(figure, axes[0], len(curves), len(panels), title=legend_title)
        if title:
            figure.suptitle(title)
    return figure


def _band_line(axes, index: int, label: str, x: np.ndarray, values: np.ndarray) -> None:
    """The mean over repeats (the columns of `values`) as a line, a min-max band if R > 1."""
    axes.plot(x, values.mean(axis=1), label=label, **style.line_style(index, marker=False))
    if values.shape[1] > 1:
        axes.fill_between(x, values.min(axis=1), values.max(axis=1), color=style.color(index), alpha=0.2, linewidth=0)


def _heatmap_size(rows, columns, metric: str = "") -> tuple[float, float]:
    """Inches for a heatmap: room for the cells and for the longest row label (left) and
    column label (below, rotated), so long labels such as ``alie(quantile=fixed,z=10.0)``
    leave the cells their size, and for the colour bar's label along its side (so it never
    reaches the title); capped at the text width and 9 inches high."""
    row_text = 0.055 * max(len(str(label)) for label in rows)
    column_text = 0.04 * max(len(str(label)) for label in columns)
    width = 1.7 + 0.55 * len(columns) + max(0.0, row_text - 0.8)
    height = max(1.3 + 0.3 * len(rows), 1.4 + 0.075 * len(metric)) + max(0.0, column_text - 0.4)
    return min(_PAGE, max(_COLUMN, width)), min(9.0, max(_HEIGHT, height))


def _heatmap_figure(
    values, row_labels, column_labels, *, title, metric, mark_worst, higher_is_better, xlabel=None, ylabel=None,
    vmin=None, vmax=None, chance=None, notes=None,
) -> tuple[Figure, list[tuple[int, int]]]:
    """The heatmap figure and the boxed (row, column) cells; see `heatmap`."""
    values = np.asarray(values, dtype=float)
    rows, columns = list(row_labels), list(column_labels)
    if values.ndim != 2 or values.shape != (len(rows), len(columns)):
        raise ValueError(
            f"heatmap: values has shape {values.shape} but there are {len(rows)} row_labels and "
            f"{len(columns)} column_labels; values must be [{len(rows)}, {len(columns)}]."
        )
    if values.size == 0:
        raise ValueError("heatmap: values is empty; pass at least one row and one column.")
    if mark_worst not in ("row", "column", None):
        raise ValueError(f"heatmap: unknown mark_worst {mark_worst!r}. Valid: 'row', 'column' or None.")
    notes = _notes(notes, values)
    marked = [] if mark_worst is None else _worst_cells(values, mark_worst, higher_is_better=higher_is_better)
    norm = _colour_range(values, vmin, vmax)
    size = _heatmap_size(rows, columns, metric or "")
    with matplotlib.rc_context(STYLE):
        figure = style.figure(size)
        axes = figure.subplots()
        cmap = matplotlib.colormaps["viridis"].with_extremes(bad=_MISSING_COLOR)
        image = axes.imshow(np.ma.masked_invalid(values), cmap=cmap, norm=norm, aspect="auto")
        bar = figure.colorbar(image, ax=axes, label=metric, shrink=0.9, extend=_beyond(values, norm))
        handles = []
        if chance is not None and norm.vmin <= chance <= norm.vmax:
            look = {"color": "white", "linewidth": 1.4, "path_effects": [withStroke(linewidth=3, foreground="black")]}
            bar.ax.axhline(chance, gid="chance", **look)
            handles.append(Line2D([], [], label=f"chance ({chance:.2f})", **look))
        _annotate_cells(axes, values, cmap, norm, notes)
        for row, column in marked:
            axes.add_patch(
                Rectangle((column - 0.5, row - 0.5), 1, 1, fill=False, edgecolor=_MARK_COLOR, linewidth=2, gid="worst")
            )
        _category_ticks(axes, rows, columns)
        axes.set_xlabel(xlabel or "")
        axes.set_ylabel(ylabel or "")
        if marked:
            handles.insert(0, Patch(fill=False, edgecolor=_MARK_COLOR, linewidth=2, label=f"worst in its {mark_worst}"))
        if handles:  # below everything, so it never meets the title or the labels
            figure.legend(handles=handles, loc="outside lower right", ncols=len(handles))
        if title:  # above the colour bar too, so a long title never meets its label
            figure.suptitle(title)
    return figure, marked


def _colour_range(values: np.ndarray, vmin, vmax) -> Normalize:
    """The colour scale: [vmin, vmax], each end the data's when None (0..1 for no data)."""
    finite = values[np.isfinite(values)]
    low = vmin if vmin is not None else (finite.min() if finite.size else 0.0)
    high = vmax if vmax is not None else (finite.max() if finite.size else 1.0)
    if (vmin is not None or vmax is not None) and not low < high:
        raise ValueError(
            f"heatmap: the colour range [{low:g}, {high:g}] is empty (vmin={vmin}, vmax={vmax}, values "
            f"{finite.min() if finite.size else 'none'}..{finite.max() if finite.size else 'none'}); "
            "give a vmin below vmax."
        )
    return Normalize(float(low), float(high))


def _beyond(values: np.ndarray, norm: Normalize) -> str:
    """The colour bar's arrows: on each side some value lies beyond the colour range."""
    finite = values[np.isfinite(values)]
    low = bool(finite.size and finite.min() < norm.vmin)
    high = bool(finite.size and finite.max() > norm.vmax)
    return {(False, False): "neither", (True, False): "min", (False, True): "max", (True, True): "both"}[(low, high)]


def _worst_cells(values: np.ndarray, line: str, *, higher_is_better: bool = True) -> list[tuple[int, int]]:
    """The cells holding the worst value of each row or column, NaN ignored.

    Worst is the minimum when `higher_is_better`, else the maximum. Every cell equal to its
    line's worst is returned (exact ties are not broken); a line of NaN has none.

    Args:
      values: float[r, c].
      line: "row" or "column".
      higher_is_better: whether a larger value is better.

    Returns:
      (row, column) pairs in row-major order.

    Example:
      >>> _worst_cells(np.array([[0.9, np.nan, 0.5], [0.2, 0.8, 0.2]]), "row")
      [(0, 2), (1, 0), (1, 2)]
    """
    score = np.where(np.isnan(values), np.inf, values if higher_is_better else -values)
    worst = score.min(axis=1 if line == "row" else 0, keepdims=True)
    hit = (score == worst) & ~np.isnan(values)
    return [(int(row), int(column)) for row, column in np.argwhere(hit)]


def _notes(notes, values: np.ndarray) -> np.ndarray:
    """object[r, c]: the heatmap's notes (None where none), checked against ``values``."""
    if notes is None:
        return np.full(values.shape, None, dtype=object)
    table = np.empty(values.shape, dtype=object)
    rows = list(notes)
    if len(rows) != values.shape[0] or any(len(list(row)) != values.shape[1] for row in rows):
        raise ValueError(f"heatmap: notes must be {values.shape[0]} rows of {values.shape[1]} (like values).")
    for i, row in enumerate(rows):
        table[i, :] = list(row)
    noted = np.array([[note is not None for note in row] for row in table], dtype=bool).reshape(values.shape)
    clash = [(int(r), int(c)) for r, c in np.argwhere(noted & ~np.isnan(values))]
    if clash:
        raise ValueError(f"heatmap: notes on cells that have a value {clash}; a note replaces a missing value only.")
    return table


def _annotate_cells(axes, values: np.ndarray, cmap, norm, notes: np.ndarray) -> None:
    """Write each cell's value (2 decimals), dark on light cells and light on dark ones; hatch
    and label the missing ones with their note, or "n/a"."""
    size = 8 if values.shape[1] <= 8 else 6.5
    for (row, column), value in np.ndenumerate(values):
        if np.isnan(value):
            axes.add_patch(
                Rectangle((column - 0.5, row - 0.5), 1, 1, fill=False, hatch="////", edgecolor="#b0b0b0", linewidth=0)
            )
            note = notes[row, column]
            shown = "n/a" if note is None else note
            small = size * 0.75 if len(shown) > 4 else size  # "diverged" fits a cell's width
            axes.text(column, row, shown, ha="center", va="center", fontsize=small,
                      color="#555555", gid=None if note is None else "note")
            continue
        red, green, blue, _ = cmap(norm(value))
        light = 0.299 * red + 0.587 * green + 0.114 * blue > 0.5
        colour = "black" if light else "white"
        axes.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize=size, color=colour)


def _category_ticks(axes, rows: list[str], columns: list[str]) -> None:
    """Label the cells, rotating the column labels when any is longer than 4 characters."""
    axes.set_xticks(range(len(columns)), [str(label) for label in columns])
    axes.set_yticks(range(len(rows)), [str(label) for label in rows])
    if any(len(str(label)) > 4 for label in columns):
        axes.tick_params(axis="x", labelrotation=35)
        for label in axes.get_xticklabels():
            label.set(ha="right", rotation_mode="anchor")
    axes.tick_params(length=0)
    axes.grid(False)
    for spine in axes.spines.values():
        spine.set_visible(False)


def _versus_figure(series, *, xlabel, ylabel, title, log_x=False, legend_title=None, log_y=False) -> Figure:
    """The versus figure; see `versus`."""
    series = check_items("versus", "series", series, Series)
    if log_x and any(np.any(item.x <= 0) for item in series):
        raise ValueError("versus: a logarithmic x axis needs every x > 0.")
    with matplotlib.rc_context(STYLE):
        figure = style.figure((_COLUMN, _HEIGHT))
        axes = figure.subplots()
        for index, item in enumerate(series):
            order = np.argsort(item.x, kind="stable")
            x, y = item.x[order], item.y[order]
            mean = y.mean(axis=1)
            spread = np.stack([mean - y.min(axis=1), y.max(axis=1) - mean]) if y.shape[1] > 1 else None
            look = style.line_style(index, marker=True) | ({} if item.connect else {"linestyle": "none"})
            axes.errorbar(x, mean, yerr=spread, label=item.label, capsize=2, elinewidth=0.8, **look)
        if log_x:
            axes.set_xscale("log")
        if log_y:
            axes.set_yscale("log")
        axes.set_xlabel(xlabel)
        axes.set_ylabel(ylabel)
        style.legend(figure, axes, len(series), 1, title=legend_title)
        if title:
            axes.set_title(title)
    return figure


def _graph_accuracy_figure(graph, accuracy, byzantine, *, title) -> Figure:
    """The graph figure; see `graph_accuracy`."""
    accuracy = np.asarray(accuracy, dtype=float)
    n = graph.number_of_nodes()
    if accuracy.shape != (n,):
        raise ValueError(
            f"graph_accuracy: accuracy has shape {accuracy.shape}; the graph has {n} nodes, so it must be ({n},)."
        )
    excluded = set(byzantine)
    missing = [node for node in range(n) if np.isnan(accuracy[node]) and node not in excluded]
    if missing:
        raise ValueError(
            f"graph_accuracy: accuracy is NaN at honest node {missing[0]}; only Byzantine nodes may "
            "lack an accuracy. Pass the node's accuracy or list it in byzantine."
        )
    with matplotlib.rc_context(STYLE):
        figure = topologies.draw(graph, byzantine=byzantine, values=accuracy, label="final accuracy", title=title)
    return style.shrink(figure, _GRAPH_SCALE)
