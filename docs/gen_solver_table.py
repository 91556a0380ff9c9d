"""Print the solver tables (markdown) from the solvers' own facts.

Run from the repository root and paste the output into docs/solvers.md and README.md:

    python docs/gen_solver_table.py            # both tables (docs/solvers.md)
    python docs/gen_solver_table.py --readme   # SDE table and a one-line ODE summary (README.md)
    python docs/gen_solver_table.py --sde      # SDE table only
    python docs/gen_solver_table.py --ode      # ODE table only

Every fact comes from `sk.solvers.X()`: `.sde` (calculus, strong/weak order per noise type,
Lévy area, embedded error estimate) for SDE methods, `.order`, `.embedded_order` and
`.fevals_per_step` for ODE methods. A factory with a `calculus` argument (Milstein) is listed
once, with both calculi.
"""

import inspect
import sys

import sdekit as sk

NOISES = ("additive", "scalar", "diagonal", "commutative", "general")
LEVY = {
    "increment": "W",
    "space-time": "W, H",
    "space-time-time": "W, H, K",
    "space-space": "W, H, A (`area=True`)",
}
CALCULUS = {"ito": "Itô", "stratonovich": "Strat."}


def _solvers():
    """The public solver factories that take no required argument, as `(name, factory, solver)`."""
    for name in sk.solvers.__all__:
        factory = getattr(sk.solvers, name)
        if name[0].isupper() or not callable(factory):
            continue
        params = inspect.signature(factory).parameters.values()
        if any(p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD,
                                                  p.KEYWORD_ONLY) for p in params):
            continue  # e.g. linear_interpolate: a function, not a solver factory
        solver = factory()
        if isinstance(solver, sk.solvers.Solver):
            yield name, factory, solver


def _implicit(solver) -> bool:
    """Whether the method solves implicit stages by Newton's method: its state takes the step-size
    controller's tolerances (the protocol `sk.solve` uses), and its evaluations vary per step."""
    import jax.numpy as jnp

    problem = sk.SDE(lambda t, y, a: -y, lambda t, y, a: jnp.ones_like(y), noise="additive") if solver.sde else sk.ODE(lambda t, y, a: -y)
    return hasattr(solver.init(problem, 0.0, jnp.ones(1), None), "with_tolerances")


def _langevin(solver) -> bool:
    """Whether the method solves only `sk.UnderdampedLangevin` problems (its facts' one noise key)."""
    return set(dict(solver.sde.strong_order)) == {"langevin"}


def langevin_line():
    """The underdamped Langevin solvers in one sentence."""
    parts = []
    for name, _, solver in sorted(_solvers(), key=lambda row: row[0]):
        if solver.sde and _langevin(solver):
            facts = solver.sde
            adaptive = "embedded error" if facts.error_order else "adaptive through `half_step`"
            parts.append(f"`{name}` {_num(facts.strong('langevin'))} ({LEVY[facts.levy_area]}; {adaptive})")
    return ("Underdamped Langevin solvers, for `sk.UnderdampedLangevin` only (strong order; Lévy area): "
            + "; ".join(parts) + ".")


def _num(x):
    return f"{x:g}"


def sde_table():
    rows = [
        "| solver | calculus | " + " | ".join(NOISES) + " | Lévy area | adaptive |",
        "|---|---|" + "---|" * len(NOISES) + "---|---|",
    ]
    levy_rank = list(LEVY)
    sde_solvers = [(name, factory, solver) for name, factory, solver in _solvers()
                   if solver.sde and not _langevin(solver)]
    # Least Lévy area first, then by best strong order: roughly simple to sophisticated.
    sde_solvers.sort(key=lambda row: (levy_rank.index(row[2].sde.levy_area),
                                      max(dict(row[2].sde.strong_order).values()), row[0]))
    for name, factory, solver in sde_solvers:
        facts = solver.sde
        if "calculus" in inspect.signature(factory).parameters:
            calculus = "Itô or Strat. (`calculus=`)"
        elif set(dict(facts.strong_order)) == {"additive"}:
            calculus = "either (additive)"
        else:
            calculus = CALCULUS[facts.calculus]
        cells = []
        for noise in NOISES:
            strong, weak = facts.strong(noise), facts.weak(noise)
            cells.append("–" if strong is None else f"{_num(strong)} / {_num(weak)}")
        adaptive = "yes" if facts.error_order else "no"
        if _implicit(solver):
            calculus += ", drift-implicit"
        rows.append(f"| `{name}` | {calculus} | " + " | ".join(cells)
                    + f" | {LEVY[facts.levy_area]} | {adaptive} |")
    return "\n".join(rows)


def ode_table():
    rows = [
        "| solver | order | adaptive (embedded order) | evaluations per step |",
        "|---|---|---|---|",
    ]
    ode_solvers = sorted((row for row in _solvers() if row[2].order is not None),
                         key=lambda row: (row[2].order, row[0]))
    for name, _, solver in ode_solvers:
        adaptive = f"yes ({solver.embedded_order})" if solver.has_error_estimate else "no"
        fsal = " (FSAL)" if solver.init_fevals else ""
        evaluations = f"{solver.fevals_per_step}{fsal}"
        if _implicit(solver):
            evaluations = "Newton iterations (implicit, L-stable)"
        rows.append(f"| `{name}` | {solver.order} | {adaptive} | {evaluations} |")
    return "\n".join(rows)


def ode_line():
    """The ODE solvers in one sentence, grouped by (order, embedded order)."""
    groups = {}
    for name, _, solver in _solvers():
        if solver.order is not None:
            groups.setdefault((solver.order, solver.embedded_order), []).append(name)
    parts = []
    for (order, embedded), names in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        embedded_text = f" ({embedded})" if embedded is not None else ""
        parts.append(", ".join(f"`{n}`" for n in sorted(names)) + f" {order}{embedded_text}")
    return "ODE solvers (order; embedded order if adaptive): " + "; ".join(parts) + "."


def main(argv):
    if "--readme" in argv:
        print(sde_table())
        print()
        print(langevin_line())
        print()
        print(ode_line())
        return
    want_sde = "--ode" not in argv
    want_ode = "--sde" not in argv
    if want_sde:
        print("SDE solvers: strong / weak order per noise type (– = not supported).\n")
        print(sde_table())
        print()
        print(langevin_line())
    if want_sde and want_ode:
        print()
    if want_ode:
        print("ODE solvers.\n")
        print(ode_table())


if __name__ == "__main__":
    main(sys.argv[1:])
