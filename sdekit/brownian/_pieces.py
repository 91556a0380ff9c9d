"""From the engine's pieces to an `Increment`: scaled from the rescaled interval [0, 1] to the
tree's, masked by the error policy, and split into W, H and K (for `_tree` and `_primitive`)."""

import jax.numpy as jnp

from ._increment import Increment


def finish(spec, dt, pieces, bad) -> Increment:
    """Scale pieces (component axis first) from [0, 1] to the tree's interval and apply the
    error policy; `bad` has the shape of the query batch."""
    return assemble(spec, dt, components(spec, scaled(spec, pieces, bad)))


def scaled(spec, pieces, bad) -> list:
    """Pieces scaled to the tree's interval, NaN where `bad` under the "nan" policy (no side
    effects: the grid primitive applies it inside)."""
    root_t = jnp.sqrt(spec.t1 - spec.t0)
    out = []
    for (_, d), p in zip(spec.leaves, pieces):
        p = p * root_t.astype(d)
        if spec.on_error == "nan":
            p = spec.guard(p, jnp.reshape(bad, (1, *bad.shape) + (1,) * (p.ndim - 1 - bad.ndim)))
        out.append(p)
    return out


def assemble(spec, dt, flat: list) -> Increment:
    """The `Increment` of scaled components (the shape leaves' W, H, K one after another)."""
    comps = [flat[i :: spec.n] for i in range(spec.n)]
    W = spec.unflatten(comps[0])
    H = spec.unflatten(comps[1]) if spec.n >= 2 else None
    K = spec.unflatten(comps[2]) if spec.n >= 3 else None
    return Increment(dt, W, H, K)


def components(spec, pieces) -> list:
    """Pieces (component axis first, per shape leaf) as the flat list `assemble` takes."""
    return [p[i] for p in pieces for i in range(spec.n)]
