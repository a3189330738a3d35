"""Figures: files written per format, the drawn data checked against numpy on the returned
Figure (bands, error bars, boxed worst cells), shared style, and argument validation."""

import matplotlib
import numpy as np
import pytest
from matplotlib.collections import PolyCollection

import topologies
from decentral import plot_style, plots
from decentral.plots import Curve, Series

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ROUNDS = np.array([0, 10, 20, 30])


def _repeats(rows, repeats, seed):
    return np.random.default_rng(seed).uniform(0.1, 0.9, (rows, repeats))


def _curve(label="mean", repeats=3, low=True, seed=0):
    mean = _repeats(len(ROUNDS), repeats, seed)
    return Curve(label, ROUNDS, mean, mean - 0.1 if low else None)


def _accuracy_graph():
    accuracy = np.linspace(0.5, 0.9, 8)
    accuracy[[0, 3]] = np.nan
    return topologies.ring(8), accuracy, [0, 3]


WRITERS = {
    "learning_curves": lambda stem, formats: plots.learning_curves([_curve()], stem, formats=formats),
    "heatmap": lambda stem, formats: plots.heatmap(
        np.array([[0.5, np.nan], [0.25, 0.75]]), ["mean", "krum"], ["none", "alie"], stem, formats=formats
    ),
    "versus": lambda stem, formats: plots.versus(
        [Series("median", [0.2, 0.0, 0.1], _repeats(3, 2, 1))], stem, xlabel="Byzantine fraction", formats=formats
    ),
    "graph_accuracy": lambda stem, formats: plots.graph_accuracy(*_accuracy_graph(), stem, formats=formats),
}


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_writes_one_valid_file_per_format(name, tmp_path):
    stem = tmp_path / "new" / "folder" / name
    paths = WRITERS[name](stem, ("png", "svg", "pdf"))
    assert paths == [tmp_path / "new" / "folder" / f"{name}.{suffix}" for suffix in ("png", "svg", "pdf")]
    png, svg, pdf = (path.read_bytes() for path in paths)
    assert png.startswith(PNG_MAGIC) and len(png) > 1000
    assert b"<svg" in svg
    assert pdf.startswith(b"%PDF")


def test_default_formats_are_png_and_svg_and_a_dotted_stem_keeps_its_dots(tmp_path):
    paths = WRITERS["versus"](tmp_path / "acc_f0.25", plots.FORMATS[:2])
    assert [path.name for path in paths] == ["acc_f0.25.png", "acc_f0.25.svg"]
    assert [path.name for path in plots.versus([Series("a", [1.0], [[0.5]])], tmp_path / "d", xlabel="x")] == [
        "d.png",
        "d.svg",
    ]


def test_same_data_gives_byte_identical_files(tmp_path):
    first = WRITERS["learning_curves"](tmp_path / "a" / "curves", plots.FORMATS)
    second = WRITERS["learning_curves"](tmp_path / "b" / "curves", plots.FORMATS)
    for one, other in zip(first, second, strict=True):
        assert one.read_bytes() == other.read_bytes(), one.suffix


def test_bad_formats_raise_before_writing(tmp_path):
    with pytest.raises(ValueError, match=r"unknown format 'svgg'\. Did you mean 'svg'\? Valid: png, svg, pdf"):
        WRITERS["heatmap"](tmp_path / "h", ("png", "svgg"))
    with pytest.raises(ValueError, match=r"unknown format 'jpg'.*Valid: png, svg, pdf"):
        plots.save(matplotlib.figure.Figure(), tmp_path / "s", formats=("jpg",))
    with pytest.raises(ValueError, match=r"formats must be a sequence.*\('png',\)"):
        WRITERS["versus"](tmp_path / "v", "png")
    with pytest.raises(ValueError, match="formats is empty"):
        WRITERS["versus"](tmp_path / "v", ())
    with pytest.raises(ValueError, match=r"ends in a format suffix.*'.*fig'"):
        plots.save(matplotlib.figure.Figure(), tmp_path / "fig.png")
    assert list(tmp_path.iterdir()) == []


def _bands(axes):
    return [collection for collection in axes.collections if isinstance(collection, PolyCollection)]


def _band_edges(band, x):
    """Per x, the lowest and highest y of the band's polygon."""
    vertices = band.get_paths()[0].vertices
    return np.array([[vertices[vertices[:, 0] == at, 1].min(), vertices[vertices[:, 0] == at, 1].max()] for at in x])


def test_learning_curve_is_the_repeat_mean_with_a_min_max_band():
    curve = _curve(repeats=3, low=False)
    figure = plots._learning_curves_figure([curve], metric="test accuracy", title=None, log=False)
    (axes,) = figure.axes
    (line,) = axes.get_lines()
    np.testing.assert_array_equal(line.get_xdata(), ROUNDS)
    np.testing.assert_allclose(line.get_ydata(), curve.mean.mean(axis=1))
    (band,) = _bands(axes)
    np.testing.assert_allclose(_band_edges(band, ROUNDS), np.stack([curve.mean.min(1), curve.mean.max(1)], 1))
    assert axes.get_yscale() == "linear" and axes.get_ylabel() == "test accuracy"


def test_single_repeat_curve_draws_no_band():
    figure = plots._learning_curves_figure(
        [_curve("one run", repeats=1), _curve("three runs", repeats=3, seed=1)],
        metric="test accuracy",
        title=None,
        log=False,
    )
    for axes in figure.axes:
        assert len(axes.get_lines()) == 2
        (band,) = _bands(axes)  # the three-run curve's only
        assert band.get_facecolor()[0][:3] == pytest.approx(matplotlib.colors.to_rgb(plot_style.PALETTE[1]))


def test_worst_node_panel_shares_y_and_keeps_each_curve_colour():
    with_low, without_low = _curve("a", seed=0), _curve("b", low=False, seed=1)
    figure = plots._learning_curves_figure([without_low, with_low], metric="acc", title="t", log=True)
    mean_axes, worst_axes = figure.axes
    assert [axes.get_title() for axes in figure.axes] == ["honest mean", "worst honest node"]
    assert mean_axes.get_shared_y_axes().joined(mean_axes, worst_axes)
    assert mean_axes.get_yscale() == worst_axes.get_yscale() == "log"
    (worst_line,) = worst_axes.get_lines()
    np.testing.assert_allclose(worst_line.get_ydata(), with_low.low.mean(axis=1))
    assert worst_line.get_color() == mean_axes.get_lines()[1].get_color() == plot_style.PALETTE[1]
    assert figure.get_suptitle() == "t"


def test_figures_use_style_without_changing_global_rcparams():
    before = dict(matplotlib.rcParams)
    figure = plots._versus_figure([Series("a", [0.0, 1.0], [[0.5], [0.6]])], xlabel="x", ylabel="y", title=None)
    (axes,) = figure.axes
    assert tuple(figure.get_size_inches()) == (3.4, 2.6)
    assert not axes.spines["top"].get_visible() and not axes.spines["right"].get_visible()
    assert axes.xaxis.label.get_fontsize() == plot_style.STYLE["axes.labelsize"]
    assert figure.get_layout_engine() is not None
    assert dict(matplotlib.rcParams) == before


@pytest.mark.parametrize(
    ("line", "higher_is_better", "expected"),
    [
        ("row", True, [(0, 2), (2, 0), (2, 2)]),  # row 1 is all NaN: no box; row 2 ties
        ("row", False, [(0, 0), (2, 1)]),
        ("column", True, [(2, 0), (2, 1), (2, 2)]),
        ("column", False, [(0, 0), (2, 1), (0, 2)]),
        (None, True, []),
    ],
)
def test_heatmap_boxes_the_worst_cell_of_each_line_ignoring_nan(line, higher_is_better, expected):
    values = np.array([[0.9, np.nan, 0.5], [np.nan, np.nan, np.nan], [0.2, 0.8, 0.2]])
    figure, marked = plots._heatmap_figure(
        values, ["r0", "r1", "r2"], ["c0", "c1", "c2"],
        title=None, metric="acc", mark_worst=line, higher_is_better=higher_is_better,
    )  # fmt: skip
    assert sorted(marked) == sorted(expected)
    axes = figure.axes[0]
    boxes = [patch for patch in axes.patches if patch.get_gid() == "worst"]
    drawn = {(round(box.get_y() + 0.5), round(box.get_x() + 0.5)) for box in boxes}
    assert drawn == set(expected) and len(boxes) == len(expected)


def test_heatmap_annotates_every_cell_and_blanks_nan():
    values = np.array([[0.904, np.nan], [0.25, 0.756]])
    figure, _ = plots._heatmap_figure(
        values, ["mean", "krum"], ["no attack", "alie"],
        title="rules", metric="final honest accuracy", mark_worst="row", higher_is_better=True,
    )  # fmt: skip
    axes, colorbar = figure.axes
    texts = {(round(text.get_position()[1]), round(text.get_position()[0])): text.get_text() for text in axes.texts}
    assert texts == {(0, 0): "0.90", (0, 1): "n/a", (1, 0): "0.25", (1, 1): "0.76"}
    image = axes.get_images()[0]
    assert image.get_cmap().name.startswith("viridis") and np.ma.is_masked(image.get_array()[0, 1])
    assert colorbar.get_ylabel() == "final honest accuracy"
    assert [label.get_rotation() for label in axes.get_xticklabels()] == [35.0, 35.0]  # "no attack" is long


def test_heatmap_writes_a_note_in_a_cell_without_value_and_never_a_number():
    values = np.array([[0.5, np.nan], [np.nan, 0.7]])
    figure, marked = plots._heatmap_figure(
        values, ["mean", "krum"], ["a", "b"], title=None, metric="acc", mark_worst="row", higher_is_better=True,
        notes=[[None, "diverged"], [None, None]],
    )  # fmt: skip
    axes = figure.axes[0]
    texts = {(round(text.get_position()[1]), round(text.get_position()[0])): text.get_text() for text in axes.texts}
    assert texts == {(0, 0): "0.50", (0, 1): "diverged", (1, 0): "n/a", (1, 1): "0.70"}
    assert sorted(marked) == [(0, 0), (1, 1)]  # a noted cell has no value to be the worst
    with pytest.raises(ValueError, match=r"notes on cells that have a value \[\(0, 0\)\]"):
        plots.heatmap(values, ["mean", "krum"], ["a", "b"], "unused", notes=[["diverged", None], [None, None]])
    with pytest.raises(ValueError, match="notes must be 2 rows of 2"):
        plots.heatmap(values, ["mean", "krum"], ["a", "b"], "unused", notes=[[None, None]])


def test_heatmap_keeps_a_long_colour_bar_label_and_long_notes_inside_their_space():
    values = np.array([[0.9, np.nan, 0.4, 0.5]] * 4)
    notes = [[None, "diverged", None, None]] * 4
    figure, _ = plots._heatmap_figure(
        values, list("abcd"), ["1", "2", "3", "4"], title="Trimmed mean (clip + NNM): accuracy under the worst attack",
        metric="final honest accuracy, worst attack", mark_worst="row", higher_is_better=True, notes=notes,
    )  # fmt: skip
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    axes, colorbar = figure.axes
    label = colorbar.yaxis.label.get_window_extent(renderer)
    assert label.y1 < figure._suptitle.get_window_extent(renderer).y0  # the bar's label ends below the title
    cell_width = axes.transData.transform((1, 0))[0] - axes.transData.transform((0, 0))[0]
    (note,) = {text for text in axes.texts if text.get_text() == "diverged" and text.get_position()[1] == 0}
    assert note.get_window_extent(renderer).width < cell_width  # "diverged" fits its cell


def test_heatmap_validates_shapes_and_marking():
    with pytest.raises(ValueError, match=r"heatmap: values has shape \(2, 3\).*2 row_labels and 2 column_labels"):
        plots.heatmap(np.zeros((2, 3)), ["a", "b"], ["x", "y"], "unused")
    with pytest.raises(ValueError, match=r"values has shape \(4,\)"):
        plots.heatmap(np.zeros(4), ["a"], ["x"], "unused")
    with pytest.raises(ValueError, match=r"unknown mark_worst 'rows'"):
        plots.heatmap(np.zeros((1, 1)), ["a"], ["x"], "unused", mark_worst="rows")


def test_versus_sorts_x_and_draws_min_max_error_bars():
    x = np.array([0.3, 0.0, 0.1])
    y = _repeats(3, 4, seed=2)
    figure = plots._versus_figure(
        [Series("median", x, y), Series("cloud", [0.5, 0.2], [[0.4], [0.6]], connect=False)],
        xlabel="Byzantine fraction", ylabel="acc", title=None,
    )  # fmt: skip
    (axes,) = figure.axes
    errorbars, cloud = axes.containers
    line, _, (bars,) = errorbars
    order = np.argsort(x)
    np.testing.assert_array_equal(line.get_xdata(), x[order])
    np.testing.assert_allclose(line.get_ydata(), y[order].mean(axis=1))
    spans = np.array([[segment[:, 1].min(), segment[:, 1].max()] for segment in bars.get_segments()])
    np.testing.assert_allclose(spans, np.stack([y[order].min(1), y[order].max(1)], 1))
    assert line.get_linestyle() == "-" and line.get_marker() == "o"
    cloud_line, _, cloud_bars = cloud
    assert cloud_line.get_linestyle() == "None" and cloud_line.get_marker() == "s"
    assert cloud_bars == ()  # a single repeat: no error bar
    np.testing.assert_array_equal(cloud_line.get_xdata(), [0.2, 0.5])


def test_versus_log_x_needs_positive_x():
    nodes = Series("mean", [100, 1000, 10_000], _repeats(3, 2, seed=3))
    (axes,) = plots._versus_figure([nodes], xlabel="nodes", ylabel="acc", title=None, log_x=True).axes
    assert axes.get_xscale() == "log"
    with pytest.raises(ValueError, match="logarithmic x axis needs every x > 0"):
        plots.versus([Series("f", [0.0, 0.1], _repeats(2, 1, seed=4))], "unused", xlabel="x", log_x=True)


def test_versus_log_y_sets_a_logarithmic_y_axis():
    errors = Series("cs_plus", [2, 5, 8], np.array([[1e-3, 2e-3], [1e-2, 3e-2], [1.0, 2.0]]))
    (axes,) = plots._versus_figure([errors], xlabel="b", ylabel="error", title=None, log_y=True).axes
    assert (axes.get_yscale(), axes.get_xscale()) == ("log", "linear")
    (plain,) = plots._versus_figure([errors], xlabel="b", ylabel="error", title=None).axes
    assert plain.get_yscale() == "linear"


def test_curve_and_series_name_the_bad_argument_and_shapes():
    with pytest.raises(ValueError, match=r"Curve 'k': mean has shape \(3, 2\) but rounds has 4 entries"):
        Curve("k", ROUNDS, np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"mean has shape \(4,\).*mean\[:, None\]"):
        Curve("k", ROUNDS, np.zeros(4))
    with pytest.raises(ValueError, match=r"low has shape \(4, 1\) but mean has \(4, 2\)"):
        Curve("k", ROUNDS, np.zeros((4, 2)), np.zeros((4, 1)))
    with pytest.raises(ValueError, match="rounds must be strictly increasing"):
        Curve("k", [0, 20, 10, 30], np.zeros((4, 1)))
    with pytest.raises(ValueError, match=r"Series 's': y has shape \(2, 1\) but x has 3 entries"):
        Series("s", [0.0, 0.1, 0.2], np.zeros((2, 1)))
    with pytest.raises(ValueError, match="x must be finite"):
        Series("s", [0.0, np.nan], np.zeros((2, 1)))
    with pytest.raises(ValueError, match="learning_curves: curves is empty"):
        plots.learning_curves([], "unused")
    with pytest.raises(ValueError, match=r"versus: series\[0\] is a tuple, not a Series"):
        plots.versus([("a", [0.0], [[1.0]])], "unused", xlabel="x")


def test_graph_accuracy_colours_honest_nodes_at_paper_size():
    graph, accuracy, byzantine = _accuracy_graph()
    figure = plots._graph_accuracy_figure(graph, accuracy, byzantine, title="ring")
    assert tuple(figure.get_size_inches()) == (3.5, 3.0)  # topologies.draw's 7 x 6, halved
    axes, colorbar = figure.axes
    assert colorbar.get_ylabel() == "final accuracy"
    honest = [collection for collection in axes.collections if collection.get_array() is not None]
    (nodes,) = honest
    np.testing.assert_allclose(nodes.get_array(), np.delete(accuracy, byzantine))


def test_graph_accuracy_validates_accuracy():
    graph, accuracy, byzantine = _accuracy_graph()
    with pytest.raises(ValueError, match=r"accuracy has shape \(7,\); the graph has 8 nodes"):
        plots.graph_accuracy(graph, accuracy[:7], byzantine, "unused")
    with pytest.raises(ValueError, match="accuracy is NaN at honest node 3"):
        plots.graph_accuracy(graph, accuracy, [0], "unused")


def _heatmap(**options):
    values = np.array([[0.5, np.nan], [0.25, 0.75]])
    defaults = dict(title="t", metric="acc", mark_worst="row", higher_is_better=True, xlabel="attack", ylabel="aggregator")
    return plots._heatmap_figure(values, ["mean", "krum"], ["none", "alie"], **(defaults | options))[0]


def _chance_lines(figure):
    return [line for line in figure.axes[1].get_lines() if line.get_gid() == "chance"]


def test_heatmap_labels_its_axes_and_spans_the_colour_range_given():
    figure = _heatmap(vmin=0.0, vmax=1.0, chance=0.1)
    axes, colorbar = figure.axes
    assert (axes.get_xlabel(), axes.get_ylabel(), figure.get_suptitle()) == ("attack", "aggregator", "t")
    norm = axes.get_images()[0].norm
    assert (norm.vmin, norm.vmax) == (0.0, 1.0) and colorbar.get_ylim() == (0.0, 1.0)
    (line,) = _chance_lines(figure)
    np.testing.assert_allclose(line.get_ydata(), [0.1, 0.1])
    (legend,) = figure.legends
    assert [entry.get_text() for entry in legend.get_texts()] == ["worst in its row", "chance (0.10)"]
    # the data's range when not given; values beyond a given end: an arrow on that side
    unfixed = _heatmap()
    assert (unfixed.axes[0].get_images()[0].norm.vmin, unfixed.axes[0].get_images()[0].norm.vmax) == (0.25, 0.75)
    assert not _chance_lines(unfixed)
    assert _heatmap(vmin=0.3, vmax=0.7).axes[0].get_images()[0].colorbar.extend == "both"
    assert _heatmap(vmin=0.0).axes[0].get_images()[0].colorbar.extend == "neither"
    assert not _chance_lines(_heatmap(vmin=0.2, vmax=1.0, chance=0.1))  # below the colour range: not drawn
    with pytest.raises(ValueError, match=r"colour range \[0.9, 0.2\] is empty"):
        _heatmap(vmin=0.9, vmax=0.2)
    with pytest.raises(ValueError, match=r"colour range \[0.8, 0.75\] is empty"):
        _heatmap(vmin=0.8)


def test_curves_and_versus_label_their_axes_and_legend():
    figure = plots._learning_curves_figure([_curve("mean"), _curve("krum", seed=1)], metric="accuracy", title="T",
                                           log=False, legend_title="aggregator")
    assert [axes.get_xlabel() for axes in figure.axes] == ["round", "round"] and figure.axes[0].get_ylabel() == "accuracy"
    assert figure.get_suptitle() == "T" and figure.legends[0].get_title().get_text() == "aggregator"
    figure = plots._versus_figure([Series("a", [0.0, 1.0], [[0.5], [0.6]])], xlabel="x", ylabel="y", title="T",
                                  legend_title="aggregator")
    (axes,) = figure.axes
    assert (axes.get_xlabel(), axes.get_ylabel(), axes.get_title()) == ("x", "y", "T")
    assert axes.get_legend().get_title().get_text() == "aggregator"
