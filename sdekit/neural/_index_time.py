r"""Solving a model along one series, in index time.

Every model solves on the observation grid of its series. To give all series of a batch one
grid (and one cheap Brownian tree build) the solve runs in *index time* $s$: knot $i$ of the
series sits at $s = i$ and, on $[i, i+1)$, real time moves linearly, $\mathrm{d}t/\mathrm{d}s
= h_i = t_{i+1} - t_i$. The SDE $\mathrm{d}z = f(t, z)\,\mathrm{d}t + g(t, z)\,\mathrm{d}W_t$
becomes $\mathrm{d}z = f\,h_i\,\mathrm{d}s + g\,\sqrt{h_i}\,\mathrm{d}W_s$ (the same law, as
$\sqrt{h_i}\,\Delta W_s \sim N(0, h_i)$), so that:

- Euler--Maruyama with steps $\Delta s = 1$ is exactly Euler--Maruyama on the observation times
  ($\mathrm{d}t$ = the observation spacing, as in Oh, Lim & Kim's code);
- padding (times repeating the last one) has $h_i = 0$: the state stays exactly at its value
  at the last observation, so the final state is read at the end of the grid, for every
  adjoint (`Reversible` keeps only the final state);
- the grid $0, 1, \dots, L-1$ (or `substeps` per interval) is the same for every series, a
  concrete `sk.StepTo` grid, with the noise drawn at once by the tree's grid build over
  $[0, L-1]$ (a shallow tree: `tol` is the step).

Solvers that evaluate the vector field at the *end* of a step (Heun, reversible Heun) see
there the spacing of the interval that starts at that knot. On evenly spaced times (the UEA
protocol: dropped observations keep their times) this is the same method on the observation
grid, except for the last step of a padded series, whose end evaluation is scaled by the
padding's zero spacing; on unevenly spaced times it is a first-order inconsistency at the
knots. Euler--Maruyama (the default) and the midpoint methods evaluate only at the start
and inside a step and are exact; `substeps > 1` shrinks the effect for the others.
"""

import jax
import jax.numpy as jnp
import numpy as np

import sdekit as sk


def index_grid(length: int, substeps: int, dtype) -> np.ndarray:
    """The index-time grid: `substeps` equal steps per observation interval."""
    if not isinstance(substeps, int) or substeps < 1:
        raise ValueError(f"substeps must be a positive int, got {substeps!r}.")
    return (np.arange((length - 1) * substeps + 1) / substeps).astype(dtype)


def sde_solver(solver, adjoint):
    """The solver to use: the given one, else Euler--Maruyama (the paper's), or reversible Heun
    under `sk.adjoint.Reversible` (which needs it)."""
    if solver is not None:
        return solver
    if isinstance(adjoint, sk.adjoint.Reversible):
        return sk.solvers.reversible_heun()
    return sk.solvers.euler_maruyama()


def ode_solver(solver, adjoint):
    """The ODE solver: the given one, else the midpoint method (evaluations at the start and
    middle of a step: exact in index time), or reversible Heun under `Reversible`."""
    if solver is not None:
        return solver
    if isinstance(adjoint, sk.adjoint.Reversible):
        return sk.solvers.reversible_heun()
    return sk.solvers.midpoint()


def in_solver_calculus(sde: sk.SDE, solver) -> sk.SDE:
    """The models are Itô SDEs (as in the papers); a Stratonovich solver gets the same SDE in
    Stratonovich form (`sk.terms.stratonovich_drift`; nothing changes for additive noise)."""
    calculus = solver.sde.calculus
    if sde.noise == "additive":
        return sk.SDE(sde.drift, sde.diffusion, noise="additive", calculus=calculus)
    return sde if calculus == sde.calculus else sk.terms.stratonovich_drift(sde)


def grid_time(ts, s):
    r"""Index time on the knots `ts` (non-decreasing): $(t(s), h, i)$ with $i = \lfloor s
    \rfloor$ (clipped to the last interval), $h = t_{i+1} - t_i$ and $t(s) = t_i + (s - i)h$."""
    s = jnp.asarray(s, ts.dtype)
    i = jnp.clip(jnp.floor(s).astype(jnp.int32), 0, ts.shape[0] - 2)
    ts = jax.lax.stop_gradient(ts)
    h = ts[i + 1] - ts[i]
    return ts[i] + (s - i.astype(s.dtype)) * h, h, i


def brownian_tree(key, end, shape, substeps, dtype, solver, adjoint) -> sk.BrownianTree:
    """One tree over the index-time interval, with the Lévy areas the solver (and a
    `Backsolve` adjoint's backward solver) needs."""
    needs = [solver.sde.levy_area]
    if isinstance(adjoint, sk.adjoint.Backsolve):
        needs.append((adjoint.solver or sk.solvers.heun_sde()).sde.levy_area)
    levy, area = sk.brownian.tree_options(*needs)
    options = dict(dtype=dtype) if isinstance(shape, tuple) else {}
    return sk.BrownianTree(key, 0.0, end, shape=shape, tol=0.5 / substeps, levy=levy, area=area, **options)


def solve_sde(sde: sk.SDE, y0, path, *, key, solver, adjoint, substeps, saveat=None, brownian_shape=None, args=None):
    """Solve `sde` (vector fields in index time; `args`, by default the control path `path`)
    along the grid of `path` (a `ControlPath`, or the knots themselves) from `y0`; returns the
    `sk.Solution` (final state by default)."""
    knots = getattr(path, "ts", path)
    dtype = jnp.result_type(*jax.tree.leaves(y0))
    solver = sde_solver(solver, adjoint)
    grid = index_grid(knots.shape[0], substeps, dtype)
    shape = brownian_shape if brownian_shape is not None else y0.shape
    tree = brownian_tree(key, grid[-1], shape, substeps, dtype, solver, adjoint)
    return sk.solve(in_solver_calculus(sde, solver), solver, grid[0], grid[-1], y0, args=path if args is None else args,
                    controller=sk.StepTo(grid), brownian=tree, adjoint=adjoint, saveat=saveat)


def solve_ode(ode: sk.ODE, z0, path, *, solver, adjoint, substeps, saveat=None):
    """Solve `ode` (in index time, `args` = the control path) along the series' grid."""
    length = path.ts.shape[0]
    grid = index_grid(length, substeps, z0.dtype)
    return sk.solve(ode, ode_solver(solver, adjoint), grid[0], grid[-1], z0, args=path,
                    controller=sk.StepTo(grid), adjoint=adjoint, saveat=saveat)

