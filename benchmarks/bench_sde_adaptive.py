"""Adaptive SDE stepping at equal error: sdekit PID + ShARK beside diffrax PID + ShARK.

Problem: dy = -(sin(3y) + y^3) dt + 0.6 (1 + sin t) dW on [0, 4], y0 = 2, 1000 paths, float64,
additive noise (ShARK: strong order 1.5, embedded error), space-time Lévy area, Brownian tol
2^-14 (relative to the interval). Each library solves on its own Brownian trees (one per path,
from the same keys) and its error is measured against its own fine fixed-step ShARK reference
on the same paths (4096 steps), so both errors are strong errors of the adaptive solve alone.

Tolerances are swept for both; the run time at equal mean error is read off each curve by
log-log interpolation, and the table prints diffrax's time over sdekit's there.

    python benchmarks/bench_sde_adaptive.py [--quick]
"""

import pathlib
import sys

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import sdekit as sk  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from _timing import markdown_table, time_at_error, tolerance_sweep, warm_up_xla  # noqa: E402

T0, T1, Y0, N_PATHS = 0.0, 4.0, 2.0, 1000  # 200 paths: the mean errors moved 30% between key sets
TOL = (T1 - T0) * 2.0**-14
N_REFERENCE = 4096
TOLERANCES = (1e-2, 3e-3, 1e-3, 3e-4, 1e-4)  # tighter ones need steps below the tree's tol
PCOEFF, ICOEFF = 0.1, 0.3
MAX_STEPS = 16384


def drift(t, y, args):
    return -(jnp.sin(3.0 * y) + y**3)


def diffusion(t, y, args):
    return 0.6 * (1.0 + jnp.sin(t)) * jnp.ones_like(y)


def sdekit_solvers():
    problem = sk.SDE(drift, diffusion, noise="additive")
    solver = sk.solvers.shark()

    def tree(key):
        return sk.BrownianTree(key, T0, T1, shape=(), tol=TOL, levy="space-time")

    def adaptive(keys, rtol):
        def one(key):
            return sk.solve(problem, solver, T0, T1, jnp.asarray(Y0), dt0=0.05, brownian=tree(key), max_steps=MAX_STEPS,
                            controller=sk.PID(rtol=rtol, atol=rtol, pcoeff=PCOEFF, icoeff=ICOEFF, dtmin=TOL))

        sols = jax.vmap(one)(keys)
        return sols.ys[:, -1], sols.stats["num_steps"]

    def reference(keys):
        grid = jnp.linspace(T0, T1, N_REFERENCE + 1)
        return jax.vmap(lambda k: sk.solve(problem, solver, T0, T1, jnp.asarray(Y0), controller=sk.StepTo(grid),
                                           brownian=tree(k)).ys[-1])(keys)

    return adaptive, reference


def diffrax_solvers():
    import diffrax

    def terms(key):
        bm = diffrax.VirtualBrownianTree(T0, T1, tol=TOL, shape=(), key=key, levy_area=diffrax.SpaceTimeLevyArea)
        return diffrax.MultiTerm(diffrax.ODETerm(drift), diffrax.ControlTerm(diffusion, bm))

    def adaptive(keys, rtol):
        def one(key):
            controller = diffrax.PIDController(rtol=rtol, atol=rtol, pcoeff=PCOEFF, icoeff=ICOEFF, dtmin=TOL)
            sol = diffrax.diffeqsolve(terms(key), diffrax.ShARK(), T0, T1, 0.05, jnp.asarray(Y0),
                                      stepsize_controller=controller, max_steps=MAX_STEPS)
            return sol.ys[-1], sol.stats["num_steps"]

        return jax.vmap(one)(keys)

    def reference(keys):
        dt = (T1 - T0) / N_REFERENCE
        return jax.vmap(lambda k: diffrax.diffeqsolve(terms(k), diffrax.ShARK(), T0, T1, dt, jnp.asarray(Y0),
                                                      max_steps=N_REFERENCE + 1).ys[-1])(keys)

    return adaptive, reference


def sweep(name, adaptive, reference, keys, tolerances):
    def mean_abs_error(ys, ref):
        return jnp.mean(jnp.abs(ys - ref))

    return tolerance_sweep(name, adaptive, jax.jit(reference)(keys), keys, tolerances, mean_abs_error, repeats=3)


def main():
    quick = "--quick" in sys.argv
    warm_up_xla()
    keys = jax.random.split(jax.random.key(0), 50 if quick else N_PATHS)
    tolerances = TOLERANCES[::2] if quick else TOLERANCES
    ours = sweep("sdekit", *sdekit_solvers(), keys, tolerances)
    theirs = sweep("diffrax", *diffrax_solvers(), keys, tolerances)

    curve = [[f"{r:.0e}", f"{e:.2e}", f"{n:.0f}", f"{s * 1e3:.1f}", f"{e2:.2e}", f"{n2:.0f}", f"{s2 * 1e3:.1f}"]
             for (r, e, n, s), (_, e2, n2, s2) in zip(ours, theirs)]
    curve_table = markdown_table(["rtol = atol", "sdekit error", "sdekit steps", "sdekit ms", "diffrax error",
                                  "diffrax steps", "diffrax ms"], curve)
    low = max(min(r[1] for r in ours), min(r[1] for r in theirs))
    high = min(max(r[1] for r in ours), max(r[1] for r in theirs))
    targets = np.geomspace(low, high, 4) if low < high else []
    matched = [[f"{e:.2e}", f"{time_at_error(ours, e) * 1e3:.1f}", f"{time_at_error(theirs, e) * 1e3:.1f}",
                f"{time_at_error(ours, e) / time_at_error(theirs, e):.2f}x"] for e in targets]
    matched_table = markdown_table(["mean strong error", "sdekit ms", "diffrax ms", "sdekit / diffrax"], matched)
    text = (
        f"Adaptive ShARK + PID (pcoeff {PCOEFF}, icoeff {ICOEFF}), additive-noise SDE on [{T0}, {T1}], "
        f"{keys.shape[0]} paths, float64, Brownian tol {TOL:.2e}, device {jax.devices()[0].device_kind}; "
        f"jax {jax.__version__}. Errors against each library's own 4096-step ShARK reference on the same "
        f"paths; times are medians after compilation.\n\n{curve_table}\n\nAt equal error (log-log "
        f"interpolation):\n\n{matched_table}\n"
    )
    print(text)
    if not quick:
        out = pathlib.Path(__file__).parent / "results" / "sde_adaptive.md"
        out.write_text(text)


if __name__ == "__main__":
    main()
