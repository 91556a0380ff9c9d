"""Tables and plots of order experiments."""

import pathlib

import numpy as np

from ._experiment import SolverResult


def order_table(results: list[SolverResult], problem: str) -> str:
    """A markdown table: solver, fitted order with its 95% interval, theory, finest error."""
    lines = [
        f"Problem: {problem}",
        "",
        "| solver | fitted order | 95% interval | theory | finest error |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.fit.order:.2f} | [{r.fit.low:.2f}, {r.fit.high:.2f}] | {r.theory:g} | {r.errors[-1]:.2e} |"
        )
    return "\n".join(lines)


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("Plots need matplotlib: pip install 'sdekit[plots]'.") from err
    return plt


def order_figure(results: list[SolverResult], title: str, ylabel: str = "max error over the grid"):
    """Log-log figure of error against step size: one line per solver, and a dashed guide of each
    theoretical order, labelled "slope p".

    A guide runs parallel to where the data should be, a factor `GUIDE_OFFSET` below the lowest
    finest point among the solvers of that order (one guide and label per order, so equal orders do
    not stack labels), so it neither hides nor is hidden by the data. The legend sits outside the
    axes, to the right, so it never covers a line; save with `bbox_inches="tight"` to keep it in
    the image. Step sizes are on a base-2 axis (grids are halved), labelled as powers of 2.

    Returns:
        The matplotlib `Figure`.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    colors = {}
    for r in results:
        [line] = ax.loglog(r.step_sizes, r.errors, "o-", label=f"{r.name}: {r.fit.order:.2f} (theory {r.theory:g})")
        colors.setdefault(r.theory, line.get_color())
    for theory, color in colors.items():
        group = [r for r in results if r.theory == theory]
        h = np.unique(np.concatenate([r.step_sizes for r in group]))
        anchor = min(group, key=lambda r: r.errors[-1])
        guide = GUIDE_OFFSET * anchor.errors[-1] * (h / anchor.step_sizes[-1]) ** theory
        ax.loglog(h, guide, "--", color=color, alpha=0.8, linewidth=1.2)
        middle = len(h) // 2
        ax.annotate(f"slope {theory:g}", (h[middle], guide[middle]), xytext=(0, -4), textcoords="offset points",
                    ha="center", va="top", fontsize=8, color=color)
    ax.plot([], [], "k--", alpha=0.8, linewidth=1.2, label="theoretical slope")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("step size h")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return fig


#: How far below a solver's finest point its slope guide passes (a factor on the error).
GUIDE_OFFSET = 0.25


def save_order_plot(
    results: list[SolverResult], title: str, path: str | pathlib.Path, ylabel: str = "max error over the grid"
) -> pathlib.Path:
    """Save `order_figure` as a PNG at `path` (legend included) and return the path."""
    plt = _pyplot()
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = order_figure(results, title, ylabel)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
