"""A hash of the outputs of the grid, cursor and solve paths on a fixed set of problems, to show a
refactor changed no value (bitwise). Run before and after: `python benchmarks/output_hash.py`.

Each line: a case and the sha256 (first 16 hex digits) of its output arrays' bytes; the last line
hashes them all.
"""

import hashlib

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)
import sdekit as sk  # noqa: E402


def _digest(tree) -> str:
    h = hashlib.sha256()
    for leaf in jax.tree.leaves(tree):
        h.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
    return h.hexdigest()[:16]


def cases():
    key = jax.random.key(7)
    tree = sk.BrownianTree(key, 0.0, 1.0, shape=(3,), tol=2**-12, levy="space-time-time")
    ts = jnp.linspace(0.0, 1.0, 37)
    yield "grid_increments", tree.grid_increments(ts)
    cur, incs = tree.cursor(), []
    for s, t in zip(ts[:-1], ts[1:]):
        inc, cur = tree.increment(s, t, cursor=cur)
        incs.append(inc)
    yield "cursor_increments", incs
    yield "fresh_increment", tree.increment(0.123, 0.789)
    area_tree = sk.BrownianTree(key, 0.0, 1.0, shape=(2,), tol=2**-8, levy="space-time", area=True)
    yield "area_grid", area_tree.grid_increments(jnp.linspace(0.0, 1.0, 9))

    ode = sk.ODE(lambda t, y, a: jnp.stack([y[1], -a * y[0] + jnp.sin(t)]))
    y0 = jnp.array([1.0, 0.0])
    yield "ode_pid_dense", sk.solve(ode, sk.solvers.tsit5(), 0.0, 5.0, y0, 2.0, controller=sk.PID(rtol=1e-6, atol=1e-8),
                                    saveat=sk.SaveAt(ts=jnp.linspace(0, 5, 7), steps=True), max_steps=256).ys
    yield "ode_backward_constant", sk.solve(ode, sk.solvers.dopri5(), 5.0, 0.0, y0, 2.0, dt0=-0.1).ys
    yield "ode_grid_jit", jax.jit(lambda y: sk.solve(ode, sk.solvers.rk4(), 0.0, 1.0, y, 2.0, dt0=0.01).ys)(y0)
    yield "ode_grad_pid", jax.grad(lambda a: sk.solve(ode, sk.solvers.tsit5(), 0.0, 2.0, y0, a,
                                                      controller=sk.PID(rtol=1e-6, atol=1e-8)).ys.sum())(2.0)

    gbm = sk.SDE(lambda t, y, a: 0.1 * y, lambda t, y, a: 0.4 * y, noise="diagonal", calculus="stratonovich")
    w = sk.BrownianTree(key, 0.0, 1.0, shape=(3,), tol=2**-12, levy="space-time")
    yg = jnp.ones(3)
    yield "sde_em_grid", sk.solve(sk.SDE(gbm.drift, gbm.diffusion, noise="diagonal"), sk.solvers.euler_maruyama(),
                                  0.0, 1.0, yg, controller=sk.StepTo(jnp.linspace(0, 1, 65)), brownian=w).ys
    yield "sde_heun_constant", sk.solve(gbm, sk.solvers.heun_sde(), 0.0, 1.0, yg, dt0=2**-6, brownian=w).ys
    pid = sk.PID(rtol=1e-3, atol=1e-3, pcoeff=0.1, icoeff=0.3)
    yield "sde_spark_adaptive", sk.solve(gbm, sk.solvers.spark(), 0.0, 1.0, yg, dt0=0.05, controller=pid, brownian=w,
                                         saveat=sk.SaveAt(steps=True)).ys
    general = sk.SDE(lambda t, y, a: -y, lambda t, y, a: 0.3 * jnp.stack([y, jnp.sin(y), y[::-1]], -1),
                     noise="general", calculus="stratonovich")
    yield "sde_general_adaptive", sk.solve(general, sk.solvers.spark(), 0.0, 1.0, yg, dt0=0.05, controller=pid,
                                           brownian=w).ys
    ou = sk.SDE(lambda t, y, a: -a * y, lambda t, y, a: 0.5 * jnp.ones(3), noise="additive", calculus="stratonovich")
    yield "sde_grad_checkpointed", jax.grad(lambda a: sk.solve(ou, sk.solvers.shark(), 0.0, 1.0, yg, a, dt0=0.05,
                                                                controller=pid, brownian=w).ys.sum())(1.0)
    yield "sde_grad_backsolve", jax.grad(lambda a: sk.solve(ou, sk.solvers.heun_sde(), 0.0, 1.0, yg, a, dt0=2**-5,
                                                             brownian=w, adjoint=sk.adjoint.Backsolve()).ys.sum())(1.0)
    yield "sde_grad_reversible", jax.grad(lambda a: sk.solve(ou, sk.solvers.reversible_heun(), 0.0, 1.0, yg, a,
                                                              dt0=2**-5, brownian=w,
                                                              adjoint=sk.adjoint.Reversible()).ys.sum())(1.0)
    yield "sample_paths", sk.sample_paths(sk.SDE(gbm.drift, gbm.diffusion, noise="diagonal"), sk.solvers.euler_maruyama(),
                                          yg, jnp.linspace(0, 1, 5), key, n_paths=8, substeps=4)


def main():
    total = hashlib.sha256()
    for name, out in cases():
        digest = _digest(out)
        total.update(digest.encode())
        print(f"{name:24s} {digest}")
    print(f"{'all':24s} {total.hexdigest()[:16]}")


if __name__ == "__main__":
    main()
