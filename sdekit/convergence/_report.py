"""Tables and plots of order experiments."""

import pathlib

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


def save_order_plot(
    results: list[SolverResult], title: str, path: str | pathlib.Path, ylabel: str = "max error over the grid"
) -> pathlib.Path:
    """Log-log plot of error against step size, one line per solver, with reference slopes."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("Plots need matplotlib: pip install 'sdekit[plots]'.") from err
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for r in results:
        line = ax.loglog(r.step_sizes, r.errors, "o-", label=f"{r.name} (order {r.fit.order:.2f}, theory {r.theory:g})")
        # Dashed guide with the theoretical slope through the coarsest point.
        guide = r.errors[0] * (r.step_sizes / r.step_sizes[0]) ** r.theory
        ax.loglog(r.step_sizes, guide, "--", color=line[0].get_color(), alpha=0.4)
    ax.set_xlabel("step size h")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
