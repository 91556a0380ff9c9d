"""Gradients through adaptive and fixed SDE solves against the same discrete solve replayed on its
accepted steps (`StepTo(sol.ts)`): relative error per adjoint and solver, float64.

Checkpointed is the gradient of the discrete solve itself (expected: rounding); Backsolve is the
continuous (stochastic) adjoint (expected: the solvers' error). Run: `python benchmarks/gradient_replay.py`.
"""

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)
import sdekit as sk  # noqa: E402


def _problems():
    diagonal = sk.SDE(lambda t, y, a: a["mu"] * y, lambda t, y, a: a["sigma"] * y, noise="diagonal",
                      calculus="stratonovich")
    additive = sk.SDE(lambda t, y, a: -a["mu"] * y + jnp.sin(y), lambda t, y, a: a["sigma"] * jnp.ones(2),
                      noise="additive", calculus="stratonovich")

    def general_diffusion(t, y, a):
        return a["sigma"] * jnp.stack([jnp.stack([y[0], 0.5 * y[1]]), jnp.stack([jnp.sin(y[0]), y[1]])])

    general = sk.SDE(lambda t, y, a: -a["mu"] * y, general_diffusion, noise="general", calculus="stratonovich")
    return {"heun_sde": (diagonal, "increment"), "shark": (additive, "space-time"), "spark": (general, "space-time"),
            "general_shark": (general, "space-time")}


def _loss(problem, solver, tree, args, controller, dt0, adjoint):
    sol = sk.solve(problem, solver, 0.0, 1.0, jnp.array([1.0, 0.5]), args, dt0=dt0, controller=controller,
                   brownian=tree, adjoint=adjoint, max_steps=4096)
    return jnp.sum(sol.ys[-1] ** 2)


def main():
    args = {"mu": jnp.array(0.3), "sigma": jnp.array(0.6)}
    adjoints = {"Checkpointed": sk.adjoint.Checkpointed(), "Checkpointed(checkpoints=16)": sk.adjoint.Checkpointed(16),
                "Backsolve": sk.adjoint.Backsolve()}
    print("| solver | steps | " + " | ".join(adjoints) + " |")
    print("|---|---|" + "---|" * len(adjoints))
    for name, (problem, levy) in _problems().items():
        solver = getattr(sk.solvers, name)()
        tree = sk.BrownianTree(jax.random.key(3), 0.0, 1.0, shape=(2,), tol=2**-14, levy=levy)
        modes = [("fixed", None, 1 / 32)]
        if solver.sde.error(problem.noise) is not None:
            modes.insert(0, ("adaptive", sk.PID(rtol=1e-3, atol=1e-3, pcoeff=0.1, icoeff=0.3), 0.05))
        for mode, controller, dt0 in modes:
            steps = sk.solve(problem, solver, 0.0, 1.0, jnp.array([1.0, 0.5]), args, dt0=dt0, controller=controller,
                             brownian=tree, saveat=sk.SaveAt(steps=True), max_steps=4096).ts
            grid = jnp.concatenate([jnp.zeros(1), steps[jnp.isfinite(steps)]])
            replay = jax.grad(lambda a: _loss(problem, solver, tree, a, sk.StepTo(grid), None, None))(args)
            ref = np.array([replay["mu"], replay["sigma"]])
            cells = []
            for adjoint in adjoints.values():
                try:
                    g = jax.grad(lambda a: _loss(problem, solver, tree, a, controller, dt0, adjoint))(args)
                    cells.append(f"{np.max(np.abs(np.array([g['mu'], g['sigma']]) - ref) / np.abs(ref)):.1e}")
                except ValueError as err:  # an adjoint that refuses this solver
                    cells.append("refused: " + str(err).split(":")[0][:40])
            print(f"| {name} | {mode} ({len(grid) - 1}) | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
