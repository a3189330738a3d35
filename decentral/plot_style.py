"""The look of every figure: the palette, markers, line styles, rcParams and the
pyplot-free figure helpers that :mod:`decentral.plots` draws with."""

from cycler import cycler
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure

#: Okabe & Ito's colour-blind-safe palette, yellow last (faint on white).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")

#: One marker per palette colour, so series stay apart in greyscale print.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")

#: Line styles for series beyond the palette: series i uses LINESTYLES[i // len(PALETTE)].
LINESTYLES = ("-", "--", ":", "-.")

#: rcParams of every figure: DejaVu Sans (shipped with matplotlib, so the same glyphs on
#: every machine), 8-10 pt text, thin grid, no top or right spine, constrained layout,
#: 300 dpi PNG, TrueType (not Type 3) fonts in PDF, and no dates or random ids in PDF and SVG
#: files: a figure rebuilt from the same data is byte-identical.
STYLE = {
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "figure.titlesize": 10,
    "axes.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.linewidth": 0.4,
    "grid.color": "#d0d0d0",
    "axes.axisbelow": True,
    "axes.prop_cycle": cycler(color=PALETTE),
    "lines.linewidth": 1.3,
    "lines.markersize": 4,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "legend.frameon": False,
    "image.cmap": "viridis",
    "figure.constrained_layout.use": True,
    "savefig.dpi": 300,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.02,
    "pdf.fonttype": 42,
    "svg.hashsalt": "decentral",
}


def shrink(figure: Figure, scale: float) -> Figure:
    """Scale `figure` and its scatter markers' areas alike, so its drawing keeps its look at
    paper size while the text keeps STYLE's point sizes."""
    figure.set_size_inches(figure.get_size_inches() * scale)
    for axes in figure.axes:
        for markers in axes.collections:
            if isinstance(markers, PathCollection):
                markers.set_sizes(markers.get_sizes() * scale**2)
    return figure


def figure(size: tuple[float, float]) -> Figure:
    """A pyplot-free figure on the Agg canvas; call inside rc_context(STYLE)."""
    blank = Figure(figsize=size)
    FigureCanvasAgg(blank)
    return blank


def color(index: int) -> str:
    """Series `index`'s palette colour."""
    return PALETTE[index % len(PALETTE)]


def line_style(index: int, *, marker: bool) -> dict:
    """Series `index`'s colour, line style and (if `marker`) marker: a palette colour and a
    marker each, then the next line style once the palette is used up."""
    style = {"color": color(index), "linestyle": LINESTYLES[index // len(PALETTE) % len(LINESTYLES)]}
    return style | ({"marker": MARKERS[index % len(MARKERS)]} if marker else {})


def legend(figure: Figure, axes, entries: int, panels: int, title: str | None = None) -> None:
    """A single panel with up to 4 entries: a legend inside, where it covers the least data.
    Otherwise one legend below the panels, so that no data is hidden. `title` heads it
    (what the entries are, e.g. "aggregator")."""
    if panels == 1 and entries <= 4:
        axes.legend(loc="best", title=title)
    else:
        handles, labels = axes.get_legend_handles_labels()
        figure.legend(handles, labels, loc="outside lower center", ncols=min(entries, 2 * panels + 1), title=title)
