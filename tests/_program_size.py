"""Program size of a traced function: a compile-time guard that does not depend on wall time."""

import jax


def equations(jaxpr) -> int:
    """Equations of a jaxpr and of every jaxpr inside it (loop bodies, inner jits)."""
    count = 0
    for eqn in jaxpr.eqns:
        count += 1
        for param in eqn.params.values():
            for sub in param if isinstance(param, (tuple, list)) else (param,):
                if isinstance(sub, jax.extend.core.ClosedJaxpr):
                    count += equations(sub.jaxpr)
                elif isinstance(sub, jax.extend.core.Jaxpr):
                    count += equations(sub)
    return count
