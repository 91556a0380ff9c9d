"""Reproduce the single-seed Brownian paper's CIR experiment (arXiv 2405.06464, Sec. 6.1 / the
authors' repository): strong orders of HOStS and drift-implicit Euler, constant vs adaptive steps,
every run on the same single-seed Brownian paths.

Both solvers and the step-size rule are *user code* written against sdekit's public protocols
(a `Solver` of pure init/step functions; a controller with scaled_error/adapt), which is the point:
new methods plug into `sk.solve` without touching the library.

    python benchmarks/cir_experiment.py --paths 2000

Model: dX = a(b - X) dt + sigma sqrt(X) dW, X0 = 1, a = b = 1, T = 4, float64, tree tol 2^-16,
space-time Levy area. Error: RMS over paths of X_T - X_T(reference = same solver, finest level + 2; --reference-offset).
Order: slope of log(error) against log(mean number of steps).
"""

import argparse
import pathlib
import sys
import time

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
    returns the desired steps, `adapt` compares and proposes.

    `propose_from_end=True` is the authors' code (their CIRController): after an accepted step the
    next one is desired(X_n+1) alone, not desired(min(X_n, X_n+1)); the paper's text gives only
    the min rule, which is `False`."""

    ctol: jax.Array
    propose_from_end: bool = eqx.field(static=True, default=False)
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

    def desired(self, x):
        return jnp.clip((_relu(x) * self.ctol) ** (2 / 3), 2.0**-15, 1.0)

    def scaled_error(self, x0, x1, x_error):
        # Two numbers for adapt: the step the rule allows, and the step to propose after accepting.
        allowed = self.desired(jnp.minimum(x0, x1))
        return jnp.stack([allowed, self.desired(x1) if self.propose_from_end else allowed])

    def adapt(self, state, h, desired, error_order):
        allowed, after_accept = desired[0], desired[1]
        accept = h <= 1.1 * allowed
        return accept, jnp.where(accept, after_accept, allowed), state

    def below_dtmin(self, h, accept):
        return jnp.zeros((), bool)


def final_value_fn(solver, sigma, *, adaptive: bool, propose_from_end: bool = False):
    """X_T and the number of accepted steps for one path, as a function of (key, level parameter):
    the step 2^-L for constant steps, ctol = 2^-L for adaptive ones."""
    b_tilde = B - sigma**2 / (4 * A)
    problem = sk.SDE(lambda t, x, a: A * (b_tilde - x), lambda t, x, a: sigma * jnp.sqrt(_relu(x)),
                     noise="scalar", calculus="stratonovich")

    def one(key, level_parameter):
        tree = sk.BrownianTree(key, 0.0, T, shape=(), tol=TOL, levy="space-time")
        if adaptive:
            controller = StateDependentSteps(level_parameter, propose_from_end)
            first = controller.desired(jnp.asarray(X0)) if propose_from_end else 2.0**-10
            sol = sk.solve(problem, solver, 0.0, T, jnp.asarray(X0), (sigma, b_tilde), dt0=first, brownian=tree,
                           controller=controller, max_steps=2**18)
        else:
            sol = sk.solve(problem, solver, 0.0, T, jnp.asarray(X0), (sigma, b_tilde), dt0=level_parameter,
                           brownian=tree, max_steps=2**18)
        return sol.ys[-1], sol.stats["num_accepted_steps"]

    return one


def run(volatility: str, n_paths: int, seed: int, modes, propose_from_end: bool, chunk: int, reference_offset: int = 2,
        solvers=("hosts", "die")):
    sigma = 1.5 if volatility == "medium" else 2.2
    keys = jax.random.split(jax.random.key(seed), n_paths)
    rows = []
    for name, step in (("hosts", hosts_step), ("die", die_step)):
        if name not in solvers:
            continue
        solver = user_solver(name, step)
        for mode, levels in zip(("constant", "adaptive"), LEVELS[volatility]):
            if mode not in modes:
                continue
            levels = list(levels)
            fn = jax.jit(jax.vmap(final_value_fn(solver, sigma, adaptive=mode == "adaptive",
                                                 propose_from_end=propose_from_end), in_axes=(0, None)))

            def values(L):  # in chunks of paths, to bound memory at 10,000+ paths
                parts = [fn(keys[i:i + chunk], jnp.asarray(2.0**-L)) for i in range(0, n_paths, chunk)]
                return tuple(np.concatenate([np.asarray(p[j]) for p in parts]) for j in range(2))

            reference, _ = values(levels[-1] + reference_offset)
            errors, steps = [], []
            for L in levels:
                x, n = values(L)
                errors.append(float(np.sqrt(np.mean((x - reference) ** 2))))
                steps.append(float(np.mean(n)))
            order = -np.polyfit(np.log(steps), np.log(errors), 1)[0]
            rows.append([volatility, name, mode, f"{order:.2f}", f"{PAPER[(volatility, name, mode)]:.2f}",
                         f"{steps[0]:.0f}-{steps[-1]:.0f}"])
            print(rows[-1], " errors:", " ".join(f"{e:.3g}" for e in errors), " mean steps:",
                  " ".join(f"{n:.0f}" for n in steps), flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paths", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--volatility", choices=["medium", "high", "both"], default="both")
    parser.add_argument("--modes", nargs="+", choices=["constant", "adaptive"], default=["constant", "adaptive"])
    parser.add_argument("--propose-from-end", action="store_true",
                        help="the authors' code's step rule: after an accepted step propose desired(X_n+1)")
    parser.add_argument("--solvers", nargs="+", choices=["hosts", "die"], default=["hosts", "die"])
    parser.add_argument("--chunk", type=int, default=2000, help="paths per compiled call")
    parser.add_argument("--append", action="store_true", help="append the table to results/cir.md")
    parser.add_argument("--reference-offset", type=int, default=2,
                        help="the reference is the same solver this many levels past the finest (the paper: 2)")
    args = parser.parse_args()
    start = time.perf_counter()
    rows = []
    for volatility in (["medium", "high"] if args.volatility == "both" else [args.volatility]):
        rows += run(volatility, args.paths, args.seed, args.modes, args.propose_from_end, args.chunk,
                    args.reference_offset, args.solvers)
    elapsed = time.perf_counter() - start
    table = markdown_table(["volatility", "solver", "steps", "strong order (sdekit)", "paper (50,000 paths)", "mean steps"], rows)
    rule = "next step desired(X_n+1) after acceptance" if args.propose_from_end else "next step desired(min(X_n, X_n+1))"
    text = (f"CIR, {args.paths:,} paths, T = 4, float64, tree tol 2^-16, adaptive rule: {rule}; "
            f"reference {args.reference_offset} levels past the finest; "
            f"same single-seed paths for every run; {elapsed:.0f} s.\n\n{table}\n")
    print(text)
    if args.append:
        with open(pathlib.Path(__file__).parent / "results" / "cir.md", "a") as f:
            f.write("\n" + text)


if __name__ == "__main__":
    main()
