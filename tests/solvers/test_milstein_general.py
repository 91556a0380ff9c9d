"""Milstein for general noise with the tree's Lévy area: exact on the Heisenberg SDE, strong order 1
on a non-commutative linear system (negative controls: without the area, and Euler-Maruyama, give
0.5), and exact first and second moments of that system."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

import sdekit as sk
from _program_size import equations

A0 = np.array([[-0.5, 0.2], [0.1, -0.3]])
B1 = np.array([[0.2, 0.6], [0.0, 0.1]])
B2 = np.array([[0.1, 0.0], [0.6, -0.2]])  # B1 B2 != B2 B1: non-commutative noise


def _linear(calculus):
    a0, b1, b2 = (jnp.asarray(x) for x in (A0, B1, B2))
    return sk.SDE(lambda t, y, a: a0 @ y, lambda t, y, a: jnp.stack([b1 @ y, b2 @ y], -1), noise="general",
                  calculus=calculus)


def _without_area(solver):
    """The same step with A = 0: plain Milstein, which assumes commutative noise."""
    step = lambda p, t0, t1, y, a, inc, s: solver.step(p, t0, t1, y, a, inc._replace(A=jnp.zeros_like(inc.A)), s)  # noqa: E731
    return solver._replace(step=step, name="milstein without area")


def _run_coarse(problem, solver, w, a, r, y0):
    """Milstein's steps on every r-th point of the fine grid of `w` and `a`, for a traced r (one
    compiled program for every level): r consecutive fine increments are joined by Chen's relation
    (what the tree returns for the coarse grid), and a step is taken at every r-th fine point."""
    h = r / w.shape[0]

    def body(carry, inc):
        y, acc_w, acc_a, k = carry
        first = k == 0
        acc_w = jnp.where(first, 0.0, acc_w)
        cross = acc_w[:, None] * inc[0][None, :]
        acc_a = jnp.where(first, 0.0, acc_a) + inc[1] + 0.5 * (cross - cross.T)
        acc_w = acc_w + inc[0]
        k = k + 1
        y1, _, _, _ = solver.step(problem, 0.0, h, y, None, sk.Increment(h, acc_w, None, None, acc_a), None)
        done = k == r
        return (jnp.where(done, y1, y), acc_w, acc_a, jnp.where(done, 0, k)), None

    init = (y0, jnp.zeros_like(w[0]), jnp.zeros_like(a[0]), jnp.zeros((), jnp.int32))
    return jax.lax.scan(body, init, (w, a))[0][0]


def test_heisenberg_exact():
    """dX = (dW1, dW2, X1 dW2 - X2 dW1) (Stratonovich) has X3 = 2 A_12 exactly: the scheme is exact
    on every grid (not leaf-aligned here), and without the area it is not."""
    def g(t, x, a):
        one, zero = jnp.ones_like(x[0]), jnp.zeros_like(x[0])
        return jnp.stack([jnp.stack([one, zero]), jnp.stack([zero, one]), jnp.stack([-x[1], x[0]])])

    sde = sk.SDE(lambda t, x, a: jnp.zeros_like(x), g, noise="general", calculus="stratonovich")
    tree = sk.BrownianTree(jax.random.key(2), 0.0, 1.0, shape=(2,), tol=2**-6, levy="space-time", area=True)
    grid = jnp.linspace(0.0, 1.0, 11)
    strat = sk.solvers.milstein_general("stratonovich")
    for solver in (strat, _without_area(strat)):
        x = sk.solve(sde, solver, 0.0, 1.0, jnp.zeros(3), controller=sk.StepTo(grid), brownian=tree).ys[-1]
        exact = 2 * tree.increment(0.0, 1.0).A[0, 1]
        err = abs(float(x[2] - exact))
        assert (err < 1e-5) == (solver.name != "milstein without area"), (solver.name, err)


@pytest.mark.slow
def test_strong_order_one_on_non_commutative_noise(x64):
    n_paths, fine, levels = 200, 512, [8, 16, 32, 64]
    keys = jax.random.split(jax.random.key(1), n_paths)
    grid = jnp.linspace(0.0, 1.0, fine + 1)
    incs = jax.jit(jax.vmap(lambda k: sk.BrownianTree(k, 0.0, 1.0, shape=(2,), tol=2**-9, levy="space-time",
                                                        area=True).grid_increments(grid)))(keys)
    y0 = jnp.ones(2)
    slopes = {}
    for calculus in ("ito", "stratonovich"):
        problem = _linear(calculus)
        mg = sk.solvers.milstein_general(calculus)
        # One compiled program per solver for every level: the coarsening factor r is traced.
        runs = {}

        def solve_at(solver, r):
            if solver.name not in runs:
                runs[solver.name] = jax.jit(jax.vmap(lambda w, a, r: _run_coarse(problem, solver, w, a, r, y0),
                                                     in_axes=(0, 0, None)))
            return runs[solver.name](incs.W, incs.A, jnp.asarray(r, jnp.int32))

        ref = solve_at(mg, 1)
        solvers = {"mg": mg, "no-area": _without_area(mg)}
        if calculus == "ito":
            solvers["em"] = sk.solvers.euler_maruyama()
            # Moments of the linear Itô SDE: E y = e^{A0} y0; vec E[y y^T] = e^{L} vec(y0 y0^T).
            mean = scipy.linalg.expm(A0) @ np.ones(2)
            eye = np.eye(2)
            gen = np.kron(eye, A0) + np.kron(A0, eye) + np.kron(B1, B1) + np.kron(B2, B2)
            second = (scipy.linalg.expm(gen) @ np.ones(4)).reshape(2, 2)
            y = np.asarray(ref)
            assert np.all(np.abs(y.mean(0) - mean) < 4 * y.std(0) / np.sqrt(n_paths) + 0.01)
            prod = y[:, :, None] * y[:, None, :]
            assert np.all(np.abs(prod.mean(0) - second) < 4 * prod.std(0) / np.sqrt(n_paths) + 0.01)
        for name, solver in solvers.items():
            errors = [float(jnp.mean(jnp.max(jnp.abs(solve_at(solver, fine // n) - ref), axis=1))) for n in levels]
            slopes[calculus, name] = np.polyfit(np.log(1.0 / np.asarray(levels)), np.log(errors), 1)[0]
    assert abs(slopes["ito", "mg"] - 1.0) < 0.15, slopes
    assert abs(slopes["stratonovich", "mg"] - 1.0) < 0.15, slopes
    for key in (("ito", "no-area"), ("stratonovich", "no-area"), ("ito", "em")):
        assert abs(slopes[key] - 0.5) < 0.15, slopes


def test_general_noise_solve_program_stays_small():
    """Compile-time guard (issue #18, item 9) on the README's example: the solve's program (with
    the area grid) is the same size at any tree depth and under 1200 equations. With the area's
    segmented associative scan and unrolled leaf levels it had 2005 at tol 2**-10, growing by
    about 100 per level, and its first call took twice as long."""
    sde = sk.SDE(lambda t, y, a: -0.5 * y, lambda t, y, a: jnp.stack([y[::-1], jnp.sin(y)], -1), noise="general")
    sizes = []
    for tol in (2.0**-10, 2.0**-14):
        tree = sk.BrownianTree(jax.random.key(2), 0.0, 1.0, shape=(2,), tol=tol, levy="space-time", area=True)
        solve = lambda y0: sk.solve(sde, sk.solvers.milstein_general(calculus="ito"), 0.0, 1.0, y0,  # noqa: E731
                                    controller=sk.StepTo(jnp.linspace(0.0, 1.0, 65)), brownian=tree).ys
        sizes.append(equations(jax.make_jaxpr(solve)(jnp.array([1.0, 0.5])).jaxpr))
    assert sizes[0] == sizes[1] and sizes[0] < 1200, sizes


def test_refusals():
    problem = _linear("stratonovich")
    tree = sk.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(2,), tol=2**-4, levy="space-time")
    with pytest.raises(ValueError, match="area=True"):
        sk.solve(problem, sk.solvers.milstein_general("stratonovich"), 0.0, 1.0, jnp.ones(2), dt0=0.25, brownian=tree)
    with pytest.raises(ValueError, match="converges to the ito solution but the SDE is stratonovich"):
        # One rule for the Milstein methods: Itô by default (as sk.SDE), never a silent choice.
        sk.solve(problem, sk.solvers.milstein_general(), 0.0, 1.0, jnp.ones(2), dt0=0.25, brownian=tree)
    with pytest.raises(ValueError, match="calculus must be"):
        sk.solvers.milstein_general("itô")
    inc = tree.increment(0.0, 0.25)
    with pytest.raises(ValueError, match="A=None"):
        sk.solvers.milstein_general("stratonovich").step(problem, 0.0, 0.25, jnp.ones(2), None, inc, None)


def test_grid_and_sequential_paths_agree(x64):
    """`solve` on an area tree: the grid fast path (`StepTo`, `grid_increments`) and the while loop
    (`ConstantStep`, one `increment` per step) give the same solution on a non-commutative system."""
    tree = sk.BrownianTree(jax.random.key(7), 0.0, 1.0, shape=(2,), tol=2**-7, levy="space-time", area=True)
    problem, solver, y0 = _linear("ito"), sk.solvers.milstein_general(calculus="ito"), jnp.array([1.0, 0.5])
    grid = sk.solve(problem, solver, 0.0, 1.0, y0, controller=sk.StepTo(jnp.linspace(0.0, 1.0, 11)), brownian=tree)
    sequential = sk.solve(problem, solver, 0.0, 1.0, y0, dt0=0.1, brownian=tree)
    np.testing.assert_allclose(grid.ys, sequential.ys, rtol=1e-10)
    plain = sk.solve(problem, sk.solvers.euler_maruyama(), 0.0, 1.0, y0, dt0=0.1, brownian=tree)
    assert np.max(np.abs(plain.ys - grid.ys)) > 1e-4  # the comparison can tell methods apart
