"""The value returned by a Brownian query: an increment and its Lévy areas."""

from typing import NamedTuple

from .._typing import Array, PyTree


class Increment(NamedTuple):
    r"""A Brownian increment over $[s, t]$ and, optionally, its time-integrals.

    All three path quantities use the normalised forms, so each has the scale
    $\sqrt{h}$ with $h = t - s$:

    - `W` $= W_t - W_s \sim N(0, h)$;
    - `H` $= \frac{1}{h}\int_s^t B_r\,dr \sim N(0, h/12)$, the space-time Lévy area,
      where $B_r = W_{s,r} - \frac{r-s}{h}W_{s,t}$ is the Brownian bridge;
    - `K` $= \frac{1}{h^2}\int_s^t B_r\,(\frac{h}{2} - (r - s))\,dr \sim N(0, h/720)$, the
      space-time-time Lévy area.

    `W`, `H` and `K` are independent. With a tree built with `area=True`, `A` is the
    space-space Lévy area $A_{ij} = \tfrac12\int_s^t (W^i_{s,r}\,dW^j_r - W^j_{s,r}\,dW^i_r)$
    (Stratonovich; variance $h^2/4$ off the diagonal), so that
    $\int_s^t W^i_{s,r} \circ dW^j_r = \tfrac12 W_i W_j + A_{ij}$. The unnormalised forms used by diffrax are
    $\bar H = hH$ and $\bar K = h^2 K$.

    Attributes:
        dt: `t - s`, in the tree's time dtype.
        W: the increment, a pytree with the structure of the tree's `shape`.
        H: the space-time Lévy area (same structure as `W`), or `None` when the tree was
            built with `levy="increment"`.
        K: the space-time-time Lévy area, or `None` unless `levy="space-time-time"`.
        A: the space-space Lévy area, leaves of shape `(*W_leaf.shape, m)` (antisymmetric in
            the last two axes, `m` the Brownian dimension), or `None` unless the tree was
            built with `area=True`. Defaults to `None`, so `Increment(dt, W, H, K)` still works.
    """

    dt: Array
    W: PyTree[Array]
    H: PyTree[Array] | None
    K: PyTree[Array] | None
    A: PyTree[Array] | None = None
