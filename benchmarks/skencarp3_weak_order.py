"""Weak order of `skencarp3` on a nonlinear SDE with time-dependent additive noise.

The weak error E[phi(y_n(T))] - E[phi(y_ref(T))] for three functionals phi, with 4, 8 and 16
steps against the same method on 128 steps of the same Brownian path (one tree per path; the
coupling makes the difference's variance that of the strong error, so 48,000 paths resolve weak
errors of 1e-4). The problem is `tests/solvers/test_srk.py`'s `ADDITIVE` one. Theory: order 2
(the docstring's conditions match the mean of the a''(g, g) term as well as the strong terms).

    python benchmarks/skencarp3_weak_order.py      # about a minute on 2 CPU cores
"""

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import sdekit as sk  # noqa: E402

T, PATHS, FINE, STEPS = 1.0, 48_000, 128, (4, 8, 16)
G = jnp.array([[1.0, 0.4, 0.0], [0.2, 0.8, 0.6]])


def drift(t, y, args):
    return jnp.stack([jnp.sin(y[1]) - 0.5 * y[0], jnp.sin(y[0]) - 0.5 * y[1] + jnp.cos(t)])


SDE = sk.SDE(drift, lambda t, y, args: (1.0 + jnp.sin(t)) * G, noise="additive")
FUNCTIONALS = {"y0^2": lambda y: y[..., 0] ** 2, "y0 y1": lambda y: y[..., 0] * y[..., 1],
               "sin y1": lambda y: jnp.sin(y[..., 1])}


def final(key, num_steps):
    tree = sk.BrownianTree(key, 0.0, T, shape=(3,), tol=T / FINE, levy="space-time")
    return sk.solve(SDE, sk.solvers.skencarp3(), 0.0, T, jnp.array([0.5, -0.3]), dt0=T / num_steps, brownian=tree,
                    max_steps=FINE).ys[-1]


def main():
    keys = jax.random.split(jax.random.key(5), PATHS)
    finals = jax.jit(jax.vmap(final, in_axes=(0, None)), static_argnums=1)
    reference = finals(keys, FINE)
    rows = {name: [] for name in FUNCTIONALS}
    for n in STEPS:
        y = finals(keys, n)
        for name, phi in FUNCTIONALS.items():
            d = np.asarray(phi(y) - phi(reference))
            rows[name].append((abs(d.mean()), d.std() / np.sqrt(PATHS)))
    print(f"weak error of skencarp3 ({PATHS} paths, reference {FINE} steps); steps: {STEPS}")
    for name, row in rows.items():
        errors = np.array([e for e, _ in row])
        slope = np.polyfit(np.log(T / np.asarray(STEPS)), np.log(errors), 1)[0]
        cells = "  ".join(f"{e:.2e} (se {s:.1e})" for e, s in row)
        print(f"{name:7s} {cells}  fitted order {slope:.2f}")


if __name__ == "__main__":
    main()
