"""The order plot (issue #18, item 10): the legend covers no line, and every solver's guide of its
theoretical slope is visible and labelled."""

import numpy as np
import pytest

from sdekit.convergence import OrderFit, SolverResult, order_figure

pytest.importorskip("matplotlib")


def _results():
    h = 1.0 / np.array([16, 32, 64, 128])
    return [SolverResult("euler_maruyama", 0.5, h, 0.3 * h**0.5, OrderFit(0.5, 0.45, 0.55)),
            SolverResult("shark", 1.5, h, 0.2 * h**1.5, OrderFit(1.5, 1.45, 1.55))]


def test_plot_legend_outside_the_axes():
    fig = order_figure(_results(), "t")
    fig.canvas.draw()
    [ax] = fig.axes
    legend = ax.get_legend().get_window_extent()
    assert not legend.overlaps(ax.get_window_extent())


def test_plot_slope_guides_visible_and_labelled():
    fig = order_figure(_results(), "t")
    [ax] = fig.axes
    labels = [t.get_text() for t in ax.texts]
    assert sorted(labels) == ["slope 0.5", "slope 1.5"]
    guides = [line for line in ax.get_lines() if line.get_linestyle() == "--" and len(line.get_xdata())]
    assert len(guides) == 2 and all(line.get_alpha() >= 0.7 for line in guides)
    # A guide runs apart from its data line (parallel, below it), so neither hides the other.
    for guide, r in zip(guides, _results()):
        below = dict(zip(guide.get_xdata(), guide.get_ydata()))
        assert all(below[h] < 0.5 * e for h, e in zip(r.step_sizes, r.errors))
    assert "theoretical slope" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_plot_one_guide_label_per_order():
    """Two solvers of order 1.5 share one guide and one label (stacked labels were unreadable)."""
    sra1 = _results()[1]._replace(name="sra1", errors=_results()[1].errors * 1.2)
    fig = order_figure([*_results(), sra1], "t")
    [ax] = fig.axes
    assert sorted(t.get_text() for t in ax.texts) == ["slope 0.5", "slope 1.5"]
