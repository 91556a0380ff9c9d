"""sdekit at another revision against the working tree, on the headline problems: run time and
compile time, in alternated fresh processes (a regression check for refactors).

    python benchmarks/compare_revisions.py be233df              # 5 alternated rounds
    python benchmarks/compare_revisions.py be233df --rounds 3

The other revision is checked out with `git worktree` into a temporary folder and imported from
there by the child processes; both use this environment's jax. Only sdekit rows: the other
libraries are the business of the bench_*.py scripts. Run time is the minimum over rounds (the
least disturbed by other load), compile time the median of each round's first compile.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def cases():
    """(name, build) pairs; build() -> (function, args) to jit."""
    import jax
    import jax.numpy as jnp

    import sdekit as sk

    def em_gbm():
        gbm = sk.SDE(lambda t, y, a: 0.05 * y, lambda t, y, a: 0.2 * y, noise="diagonal")

        def one(key):
            tree = sk.BrownianTree(key, 0.0, 1.0, shape=(), tol=2**-12)
            return sk.solve(gbm, sk.solvers.euler_maruyama(), 0.0, 1.0, jnp.ones(()), dt0=1e-3, brownian=tree).ys[-1]

        return jax.vmap(one), (jax.random.split(jax.random.key(0), 1000),)

    def spark_gbm():
        gbm = sk.SDE(lambda t, y, a: 0.05 * y, lambda t, y, a: 0.2 * y, noise="diagonal", calculus="stratonovich")

        def one(key):
            tree = sk.BrownianTree(key, 0.0, 1.0, shape=(), tol=2**-12, levy="space-time")
            return sk.solve(gbm, sk.solvers.spark(), 0.0, 1.0, jnp.ones(()), dt0=1e-2, brownian=tree).ys[-1]

        return jax.vmap(one), (jax.random.split(jax.random.key(0), 1000),)

    def shark_adaptive():
        ou = sk.SDE(lambda t, y, a: -jnp.sin(3 * y), lambda t, y, a: 0.5 * jnp.ones_like(y), noise="additive")

        def one(key):
            tree = sk.BrownianTree(key, 0.0, 1.0, shape=(), tol=2**-14, levy="space-time")
            return sk.solve(ou, sk.solvers.shark(), 0.0, 1.0, jnp.ones(()), dt0=0.05, brownian=tree,
                            controller=sk.PID(rtol=1e-3, atol=1e-3)).ys[-1]

        return jax.vmap(one), (jax.random.split(jax.random.key(0), 1000),)

    def tsit5_lv():
        def lv(t, y, a):
            return jnp.stack([1.5 * y[0] - y[0] * y[1], y[0] * y[1] - 3.0 * y[1]])

        def one(y0):
            return sk.solve(sk.ODE(lv), sk.solvers.tsit5(), 0.0, 10.0, y0, controller=sk.PID(rtol=1e-6, atol=1e-8)).ys[-1]

        return jax.vmap(one), (1.0 + jax.random.uniform(jax.random.key(0), (1000, 2)),)

    def increments():
        def run(key):
            tree = sk.BrownianTree(key, 0.0, 1.0, shape=(), tol=1e-3)
            ts = jnp.linspace(0.0, 1.0, 1001)
            return jax.lax.map(lambda i: tree.increment(ts[i], ts[i + 1]).W, jnp.arange(1000))

        return run, (jax.random.key(0),)

    def grad_step():
        w = jax.random.normal(jax.random.key(1), (2, 16, 16)) / 4
        sde = sk.SDE(lambda t, y, p: jnp.tanh(p[0] @ y), lambda t, y, p: 0.1 * jnp.tanh(p[1] @ y), noise="diagonal",
                     calculus="stratonovich")

        def loss(p, keys):
            def one(key):
                tree = sk.BrownianTree(key, 0.0, 1.0, shape=(16,), tol=2**-10)
                return sk.solve(sde, sk.solvers.heun_sde(), 0.0, 1.0, jnp.ones(16), p, dt0=0.01, brownian=tree).ys[-1]

            return jnp.mean(jax.vmap(one)(keys) ** 2)

        return jax.grad(loss), (w, jax.random.split(jax.random.key(0), 256))

    return [("EM GBM 1000 paths x 1000 steps", em_gbm), ("SPaRK GBM 1000 paths x 100 steps", spark_gbm),
            ("ShARK adaptive, 1000 paths", shark_adaptive), ("Tsit5 + PID Lotka-Volterra, 1000 ICs", tsit5_lv),
            ("1000 sequential tree increments", increments), ("SDE gradient 256 paths x 100 steps", grad_step)]


def child(path: str) -> None:
    sys.path.insert(0, path)
    import jax

    import sdekit  # noqa: F401  (from `path`)

    assert os.path.abspath(sdekit.__file__).startswith(os.path.abspath(path)), sdekit.__file__
    jax.jit(lambda a: a @ a.T).lower(jax.numpy.ones((8, 8))).compile()  # XLA start-up off the first case
    out = {}
    for name, build in cases():
        fn, args = build()
        start = time.perf_counter()
        compiled = jax.jit(fn).lower(*args).compile()
        compile_s = time.perf_counter() - start
        jax.block_until_ready(compiled(*args))
        runs = []
        for _ in range(5):
            start = time.perf_counter()
            jax.block_until_ready(compiled(*args))
            runs.append(time.perf_counter() - start)
        out[name] = (compile_s, min(runs))
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revision", nargs="?")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child")
    a = parser.parse_args()
    if a.child:
        return child(a.child)
    with tempfile.TemporaryDirectory() as tmp:
        base = os.path.join(tmp, "base")
        subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", base, a.revision], check=True,
                       capture_output=True)
        try:
            results = {"base": [], "head": []}
            for r in range(a.rounds):
                for label, path in (("base", base), ("head", ROOT)) if r % 2 == 0 else (("head", ROOT), ("base", base)):
                    done = subprocess.run([sys.executable, __file__, "--child", path], capture_output=True, text=True,
                                          check=True, env={**os.environ, "JAX_PLATFORMS": "cpu"})
                    results[label].append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(f"round {r + 1}/{a.rounds} done", file=sys.stderr)
        finally:
            subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", base], check=False)
    print(f"sdekit at {a.revision} (base) against the working tree (head); {a.rounds} alternated rounds; "
          f"load average {os.getloadavg()[0]:.1f}\n")
    print("| problem | run base (ms) | run head (ms) | head/base | compile base (s) | compile head (s) |")
    print("|---|---|---|---|---|---|")
    for name in results["base"][0]:
        rb = min(x[name][1] for x in results["base"]) * 1e3
        rh = min(x[name][1] for x in results["head"]) * 1e3
        cb = statistics.median(x[name][0] for x in results["base"])
        ch = statistics.median(x[name][0] for x in results["head"])
        print(f"| {name} | {rb:.2f} | {rh:.2f} | {rh / rb:.2f} | {cb:.2f} | {ch:.2f} |")


if __name__ == "__main__":
    main()
