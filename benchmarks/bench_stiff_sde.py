"""A stiff SDE at equal error: sdekit's IMEX `skencarp3` beside explicit adaptive SRKs.

Problem: a stochastic reaction-diffusion equation on 16 interior points of [0, 1],
du = (u_xx + u(1 - u)) dt + 0.1 dW (independent noise per point), u0 = 0.5 sin(pi x), on
[0, 1], float64. The diffusion's fastest rate is about 1150, so an explicit method is held to
h < 2 / 1150; the fast modes' stationary spread is 0.1 / sqrt(2 * 1150) = 2e-3.

- sdekit `skencarp3()` on `sk.SDE(sk.Split(reaction, diffusion), ...)` (diffusion implicit),
  and sdekit `sra1()`, each with `sk.PID(rtol, atol=rtol)`;
- diffrax `SRA1()` and `ShARK()` with `PIDController(rtol, atol=rtol)` (diffrax has no implicit
  or IMEX SDE solver).

Each library solves on its own Brownian trees (one per path, from the same keys, tol 2^-16);
each error is the mean over 32 paths of the RMS over points of |u(1) - reference|, the reference
being a fixed-step solve of the same path with 8192 steps (sdekit `skencarp3`, diffrax `ShARK`).
Run times are medians of 5 after compilation; at equal error the times are read off each
curve by log-log interpolation. Writes benchmarks/results/stiff_sde.md.

    python benchmarks/bench_stiff_sde.py
"""

import pathlib
import sys

import jax

jax.config.update("jax_enable_x64", True)

import diffrax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import sdekit as sk  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from _timing import markdown_table, time_at_error, tolerance_sweep, warm_up_xla  # noqa: E402

N, T, SIGMA, PATHS = 16, 1.0, 0.1, 32
TOL = T * 2.0**-16
N_REFERENCE = 8192
TOLERANCES = (1e-1, 3e-2, 1e-2, 3e-3, 1e-3)
MAX_STEPS = 1 << 15
X = jnp.linspace(0.0, 1.0, N + 2)[1:-1]
DX2 = float(X[1] - X[0]) ** 2
U0 = 0.5 * jnp.sin(jnp.pi * X)


def diffusion_part(t, u, args):
    padded = jnp.concatenate([jnp.zeros(1), u, jnp.zeros(1)])
    return (padded[2:] - 2 * u + padded[:-2]) / DX2


def reaction(t, u, args):
    return u * (1 - u)


def drift(t, u, args):
    return diffusion_part(t, u, args) + reaction(t, u, args)


def noise(t, u, args):
    return SIGMA * jnp.ones_like(u)


def sdekit_case(name):
    field = sk.Split(reaction, diffusion_part) if name == "skencarp3" else drift
    problem = sk.SDE(field, noise, noise="additive")
    reference_problem = sk.SDE(sk.Split(reaction, diffusion_part), noise, noise="additive")
    solver = getattr(sk.solvers, name)()

    def tree(key):
        return sk.BrownianTree(key, 0.0, T, shape=(N,), tol=TOL, levy="space-time")

    def adaptive(keys, rtol):
        def one(key):
            sol = sk.solve(problem, solver, 0.0, T, U0, dt0=1e-3, brownian=tree(key), max_steps=MAX_STEPS,
                           controller=sk.PID(rtol=rtol, atol=rtol))
            return sol.ys[-1], sol.stats["num_steps"]

        return jax.vmap(one)(keys)

    def reference(keys):
        return jax.vmap(lambda k: sk.solve(reference_problem, sk.solvers.skencarp3(), 0.0, T, U0, dt0=T / N_REFERENCE,
                                           brownian=tree(k), max_steps=N_REFERENCE).ys[-1])(keys)

    return adaptive, reference


def diffrax_case(name):
    def adaptive(keys, rtol):
        def one(key):
            sol = diffrax.diffeqsolve(_diagonal_terms(key), getattr(diffrax, name)(), 0.0, T, 1e-3, U0,
                                      stepsize_controller=diffrax.PIDController(rtol=rtol, atol=rtol),
                                      max_steps=MAX_STEPS)
            return sol.ys[-1], sol.stats["num_steps"]

        return jax.vmap(one)(keys)

    def reference(keys):
        return jax.vmap(lambda k: diffrax.diffeqsolve(_diagonal_terms(k), diffrax.ShARK(), 0.0, T, T / N_REFERENCE, U0,
                                                      max_steps=N_REFERENCE + 1).ys[-1])(keys)

    return adaptive, reference


def _diagonal_terms(key):
    """Additive noise, one Brownian motion per point: diffrax's diagonal control via lineax."""
    import lineax as lx

    bm = diffrax.VirtualBrownianTree(0.0, T, tol=TOL, shape=(N,), key=key, levy_area=diffrax.SpaceTimeLevyArea)
    diagonal = diffrax.ControlTerm(lambda t, u, a: lx.DiagonalLinearOperator(noise(t, u, a)), bm)
    return diffrax.MultiTerm(diffrax.ODETerm(drift), diagonal)


def sweep(label, adaptive, reference, keys):
    def rms_error(ys, ref):  # mean over paths of the RMS over the grid points
        return jnp.mean(jnp.sqrt(jnp.mean((ys - ref) ** 2, axis=-1)))

    return tolerance_sweep(label, adaptive, jax.jit(reference)(keys), keys, TOLERANCES, rms_error, repeats=5)


def main():
    warm_up_xla()
    keys = jax.random.split(jax.random.key(0), PATHS)
    curves = {
        "sdekit skencarp3": sweep("sdekit skencarp3", *sdekit_case("skencarp3"), keys),
        "sdekit sra1": sweep("sdekit sra1", *sdekit_case("sra1"), keys),
        "diffrax SRA1": sweep("diffrax SRA1", *diffrax_case("SRA1"), keys),
        "diffrax ShARK": sweep("diffrax ShARK", *diffrax_case("ShARK"), keys),
    }
    table = [[label, f"{r:.0e}", f"{e:.2e}", f"{n:.0f}", f"{s * 1e3:.1f}"]
             for label, rows in curves.items() for r, e, n, s in rows]
    matched = []
    for _, error, _, ours in curves["sdekit skencarp3"]:
        cells = [f"{error:.2e}", f"{ours * 1e3:.1f}"]
        for label in ("sdekit sra1", "diffrax SRA1", "diffrax ShARK"):
            theirs = time_at_error(curves[label], error)
            inside = min(r[1] for r in curves[label]) <= error <= max(r[1] for r in curves[label])
            cells.append(f"{ours / theirs:.2f}x" + ("" if inside else " (extrapolated)"))
        matched.append(cells)
    text = (
        f"Stiff SDE (stochastic reaction-diffusion, {N} points, sigma {SIGMA}, t in [0, {T}]), {PATHS} paths, "
        f"float64, Brownian tol 2^-16, device {jax.devices()[0].device_kind}; jax {jax.__version__}, diffrax "
        f"{diffrax.__version__}. Error: mean over paths of the RMS over points against each library's own "
        f"{N_REFERENCE}-step reference on the same paths. Run: median of 5 after compilation.\n\n"
        + markdown_table(["solver", "rtol = atol", "error", "steps", "run (ms)"], table)
        + "\n\nAt `skencarp3`'s errors, its run time over the others' (log-log interpolation):\n\n"
        + markdown_table(["error", "skencarp3 (ms)", "/ sdekit sra1", "/ diffrax SRA1", "/ diffrax ShARK"], matched)
        + "\n"
    )
    print(text)
    (pathlib.Path(__file__).parent / "results" / "stiff_sde.md").write_text(text)


if __name__ == "__main__":
    main()
