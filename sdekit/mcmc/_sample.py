"""Many chains at once: `vmap` over chains, `lax.scan` over a chain's transitions."""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Int, PyTree


class Samples(NamedTuple):
    """What `sample` returns.

    Attributes:
        positions: the saved positions, leaves of shape `(chains, num_samples, *position.shape)`.
        final_state: each chain's last state (leading chain axis), to continue from.
        num_grad_evals: gradient evaluations per chain, all transitions included (int32,
            shape `(chains,)`).
        num_steps, num_rejected: solver steps and rejected steps per chain (int32).
        num_failed: transitions whose solve failed (see `build_kernel`'s `throw`; int32).
    """

    positions: PyTree[Array]
    final_state: PyTree[Array]
    num_grad_evals: Int[Array, " chains"]
    num_steps: Int[Array, " chains"]
    num_rejected: Int[Array, " chains"]
    num_failed: Int[Array, " chains"]


def sample(key, step: Callable, init_states, num_samples: int, *, thin: int = 1) -> Samples:
    """Run chains side by side and keep every `thin`-th state's position.

    Args:
        key: a PRNG key; chain `c`'s transition `i` uses `fold_in(fold_in(key, c), i)`, so a
            chain's draws do not depend on how many chains run beside it.
        step: a kernel `step(key, state) -> (state, info)` whose info has `num_grad_evals`,
            `num_steps` and `num_rejected` (e.g. `sdekit.mcmc.uld(...).step`).
        init_states: the chains' first states, with a leading chain axis on every leaf (e.g.
            `jax.vmap(sampler.init)(positions, keys)`).
        num_samples: positions kept per chain (static).
        thin: transitions per kept position (static).

    Returns:
        `Samples`: positions `(chains, num_samples, ...)` and the work done.

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit.mcmc as skm
        >>> sampler = skm.uld(lambda x: -0.5 * jnp.sum(x**2), step_size=0.5)
        >>> states = jax.vmap(sampler.init)(jnp.zeros((4, 2)), jax.random.split(jax.random.key(0), 4))
        >>> out = jax.jit(skm.sample, static_argnums=(1, 3))(jax.random.key(1), sampler.step, states, 10)
        >>> out.positions.shape, out.num_grad_evals.tolist()  # 10 transitions of 2 steps, 2 gradients each
        ((4, 10, 2), [40, 40, 40, 40])
    """
    n_chains = jax.tree.leaves(init_states)[0].shape[0]

    def one_chain(chain_key, state):
        def transition(carry, i):
            state, grads, steps, rejected, failed = carry
            state, info = step(jax.random.fold_in(chain_key, i), state)
            failed = failed + jnp.asarray(getattr(info, "failed", False), jnp.int32)
            return (state, grads + info.num_grad_evals, steps + info.num_steps, rejected + info.num_rejected, failed), None

        def kept(carry, j):
            carry, _ = jax.lax.scan(transition, carry, j * thin + jnp.arange(thin))
            return carry, carry[0].position

        zero = jnp.zeros((), jnp.int32)
        (state, *counts), positions = jax.lax.scan(kept, (state, zero, zero, zero, zero), jnp.arange(num_samples))
        return positions, state, *counts

    chain_keys = jax.vmap(lambda c: jax.random.fold_in(key, c))(jnp.arange(n_chains))
    return Samples(*jax.vmap(one_chain)(chain_keys, init_states))
