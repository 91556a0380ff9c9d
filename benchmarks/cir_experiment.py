"""Reproduce the single-seed Brownian paper's CIR experiment (arXiv 2405.06464, Sec. 6.1 / the
authors' repository): strong orders of HOStS and drift-implicit Euler, constant vs adaptive steps,
every run on the same single-seed Brownian paths.

Both solvers and the step-size rule are *user code* written against sdekit's public protocols
(a `Solver` of pure init/step functions; a controller with scaled_error/adapt), which is the point:
new methods plug into `sk.solve` without touching the library.

    python benchmarks/cir_experiment.py --paths 2000

Model: dX = a(b - X) dt + sigma sqrt(X) dW, X0 = 1, a = b = 1, T = 4, float64, tree tol 2^-16,
space-time Levy area. Error: RMS over paths of X_T - X_T(reference = same solver, finest level + 2).
Order: slope of log(error) against log(mean number of steps).
"""

import argparse
import pathlib
import sys

import equinox as eqx
import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import sdekit as sk  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from _timing import markdown_table  # noqa: E402

A, B, X0, T, TOL = 1.0, 1.0, 1.0, 4.0, 2.0**-16
PAPER = {  # strong orders reported by the paper (50,000 paths)
    ("medium", "hosts", "constant"): 0.78, ("medium", "hosts", "adaptive"): 1.82,
    ("medium", "die", "constant"): 0.86, ("medium", "die", "adaptive"): 1.03,
    ("high", "hosts", "constant"): 0.39, ("high", "hosts", "adaptive"): 0.81,
    ("high", "die", "constant"): 0.46, ("high", "die", "adaptive"): 0.86,
}
LEVELS = {  # (constant L for h = 2^-L, adaptive L for ctol = 2^-L)
    "medium": (range(3, 12), range(0, 11)),
    "high": (range(5, 13), range(1, 10)),
}


def _relu(x):
    return jnp.maximum(x, 0.0)


def hosts_step(problem, t0, t1, x, args, inc, state):
    """High-order strong splitting (arXiv 2210.17543, eq. 5.3) with the step's W and H."""
    sigma, b_tilde = args
    h = inc.dt
    c1 = jnp.exp(A * h * (jnp.sqrt(3.0) - 3) / 6)
    c2 = jnp.exp(-A * h / jnp.sqrt(3.0))
    z1 = c1 * x + (1 - c1) * b_tilde
    z2 = (jnp.sqrt(_relu(z1)) + sigma / 2 * (inc.W / 2 + jnp.sqrt(3.0) * inc.H)) ** 2
    z3 = c2 * z2 + (1 - c2) * b_tilde
    z4 = (jnp.sqrt(_relu(z3)) + sigma / 2 * (inc.W / 2 - jnp.sqrt(3.0) * inc.H)) ** 2
    x1 = c1 * z4 + (1 - c1) * b_tilde
    return x1, jnp.zeros_like(x1), sk.solvers._base.LinearDense(x, x1), state


def die_step(problem, t0, t1, x, args, inc, state):
    """Drift-implicit Euler on Y = sqrt(X): dY = [a b~ /(2Y) - (a/2) Y] dt + (sigma/2) dW."""
    sigma, b_tilde = args
    h = inc.dt
    y = jnp.sqrt(_relu(x)) + sigma * inc.W / 2
    y1 = (y + jnp.sqrt(_relu(y * y + (2 + A * h) * A * b_tilde * h))) / (2 + A * h)
    x1 = y1 * y1
    return x1, jnp.zeros_like(x1), sk.solvers._base.LinearDense(x, x1), state


def user_solver(name, step):
    facts = sk.solvers.SDEFacts(
        calculus="stratonovich", strong_order=(("scalar", 1.0),), weak_order=(("scalar", 1.0),),
        levy_area="space-time", error_order=(("scalar", 1.0),),
    )
    return sk.solvers.Solver(
        name=name, init=lambda *a: sk.solvers.EmptyState(), step=step,
        interpolate=sk.solvers._base.linear_interpolate, order=None, embedded_order=1,
        interpolation_order=1, fevals_per_step=1, sde=facts,
    )


class StateDependentSteps(eqx.Module):
    """The paper's rule: desired h = clip((min(X_n, X_n+1) ctol)^(2/3), 2^-15, 1); a step more than
    1.1x the desired one is rejected. Expressed through the controller protocol: `scaled_error`
    returns the desired step, `adapt` compares and proposes."""

    ctol: jax.Array
    dtmin: float | None = 2.0**-15
    dtmax: float | None = 1.0
    jump_ts: None = None
    step_ts: None = None
    error_order: None = eqx.field(static=True, default=None)
    adaptive = True

    def revisits(self, noise):
        return 0  # the paper's scheme does not revisit

    def init(self):
        return jnp.zeros(())

    def scaled_error(self, x0, x1, x_error):
        desired = (_relu(jnp.minimum(x0, x1)) * self.ctol) ** (2 / 3)
        return jnp.clip(desired, 2.0**-15, 1.0)

    def adapt(self, state, h, desired, error_order):
        return h <= 1.1 * desired, desired, state

    def below_dtmin(self, h, accept):
        return jnp.zeros((), bool)


def final_values(solver, sigma, keys, *, dt0=None, ctol=None):
    b_tilde = B - sigma**2 / (4 * A)
    problem = sk.SDE(lambda t, x, a: A * (b_tilde - x), lambda t, x, a: sigma * jnp.sqrt(_relu(x)),
                     noise="scalar", calculus="stratonovich")

    def one(key, dt0, ctol):
        tree = sk.BrownianTree(key, 0.0, T, shape=(), tol=TOL, levy="space-time")
        if ctol is None:
            sol = sk.solve(problem, solver, 0.0, T, jnp.asarray(X0), (sigma, b_tilde), dt0=dt0, brownian=tree, max_steps=2**18)
        else:
            sol = sk.solve(problem, solver, 0.0, T, jnp.asarray(X0), (sigma, b_tilde), dt0=2.0**-10, brownian=tree,
                           controller=StateDependentSteps(ctol), max_steps=2**18)
        return sol.ys[-1], sol.stats["num_accepted_steps"]

    return one, keys


def run(volatility: str, n_paths: int, seed: int):
    sigma = 1.5 if volatility == "medium" else 2.2
    keys = jax.random.split(jax.random.key(seed), n_paths)
    rows = []
    for name, step in (("hosts", hosts_step), ("die", die_step)):
        solver = user_solver(name, step)
        for mode, levels in zip(("constant", "adaptive"), LEVELS[volatility]):
            levels = list(levels)
            fine = levels[-1] + 2
            if mode == "constant":
                fn = jax.jit(jax.vmap(lambda k, d: final_values(solver, sigma, None)[0](k, d, None), in_axes=(0, None)))
                values = lambda L: fn(keys, jnp.asarray(2.0**-L))
            else:
                fn = jax.jit(jax.vmap(lambda k, c: final_values(solver, sigma, None)[0](k, None, c), in_axes=(0, None)))
                values = lambda L: fn(keys, jnp.asarray(2.0**-L))
            reference, _ = values(fine)
            errors, steps = [], []
            for L in levels:
                x, n = values(L)
                errors.append(float(jnp.sqrt(jnp.mean((x - reference) ** 2))))
                steps.append(float(jnp.mean(n)))
            order = -np.polyfit(np.log(steps), np.log(errors), 1)[0]
            rows.append([volatility, name, mode, f"{order:.2f}", f"{PAPER[(volatility, name, mode)]:.2f}",
                         f"{steps[0]:.0f}-{steps[-1]:.0f}"])
            print(rows[-1], flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paths", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--volatility", choices=["medium", "high", "both"], default="both")
    args = parser.parse_args()
    rows = []
    for volatility in (["medium", "high"] if args.volatility == "both" else [args.volatility]):
        rows += run(volatility, args.paths, args.seed)
    table = markdown_table(["volatility", "solver", "steps", "strong order (sdekit)", "paper (50,000 paths)", "mean steps"], rows)
    text = f"CIR, {args.paths} paths, T = 4, float64, tree tol 2^-16, same single-seed paths for every run.\n\n{table}\n"
    print(text)
    (pathlib.Path(__file__).parent / "results" / "cir.md").write_text(text)


if __name__ == "__main__":
    main()
