"""What the series models share: the constructor (static configuration, the initial state
from the first observation, the linear readout, copies through `dataclasses.replace`), and the
stable classes' drift and time-only diffusion scale."""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

import sdekit as sk

from ._index_time import solve_ode, solve_sde
from ._layers import control_path, StableDrift, TimeScale, split_key


class SeriesModel(eqx.Module):
    """Base of the classification/regression models: `model(times, values, *, key)` on one
    series returns `readout(z(t_last))`, with `z(t_0) = initial(X(t_0))`.

    The constructors take `key=` to initialise the parameters; `dataclasses.replace(model,
    adjoint=..., solver=...)` copies a model with other static options and the same
    parameters (every field is passed back to the constructor, which then keeps them)."""

    initial: eqx.nn.Linear
    readout: eqx.nn.Linear
    in_size: int = eqx.field(static=True)
    hidden_size: int = eqx.field(static=True)
    out_size: int = eqx.field(static=True)
    width: int = eqx.field(static=True)
    depth: int = eqx.field(static=True)
    method: str = eqx.field(static=True)
    solver: object = eqx.field(static=True)
    adjoint: object = eqx.field(static=True)
    substeps: int = eqx.field(static=True)

    n_networks: ClassVar[int] = 2
    """How many keys `init_networks` takes (they are split from `key` between those of
    `initial` and `readout`)."""

    def __init__(self, in_size: int, hidden_size: int, out_size: int, *, key: PRNGKeyArray | None = None,
                 width: int | None = None, depth: int = 2, method: str = "hermite", solver=None, adjoint=None,
                 substeps: int = 1, **fields):
        if self._configure(in_size, hidden_size, out_size, width, depth, method, solver, adjoint, substeps, fields):
            return
        keys = split_key(key, self.n_networks + 2)
        self.initial = eqx.nn.Linear(in_size + 1, hidden_size, key=keys[0])
        self.init_networks(*keys[1:-1])
        self.readout = eqx.nn.Linear(hidden_size, out_size, key=keys[-1])

    def init_networks(self, *keys: PRNGKeyArray) -> None:
        """Set the model's own networks (between `initial` and `readout`), one key each."""
        raise NotImplementedError

    def _configure(self, in_size, hidden_size, out_size, width, depth, method, solver, adjoint, substeps, fields) -> bool:
        """Set the static options; with `fields` (a copy through `dataclasses.replace`) also
        the parameters, and return True (the constructor then stops)."""
        for name, value in (("in_size", in_size), ("hidden_size", hidden_size), ("out_size", out_size)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{type(self).__name__}: {name} must be a positive int, got {value!r}.")
        self.in_size, self.hidden_size, self.out_size = in_size, hidden_size, out_size
        self.width = hidden_size if width is None else width
        self.depth, self.method, self.substeps = depth, method, substeps
        self.solver = solver
        self.adjoint = sk.adjoint.Checkpointed() if adjoint is None else adjoint
        if fields:
            for name, value in fields.items():
                setattr(self, name, value)
            return True
        return False

    @property
    def dtype(self):
        return self.readout.weight.dtype

    def path(self, times: Float[ArrayLike, " L"], values: Float[ArrayLike, "L C"]):
        """The control path $X$ of one series (time as channel 0), in the model's dtype."""
        times, values = jnp.asarray(times), jnp.asarray(values)
        return control_path(times.astype(self.dtype), values.astype(self.dtype), self.in_size, self.method)

    def problem(self) -> sk.SDE | sk.ODE:
        """The model's equation in index time, vector fields `(s, y, path)` (each model's own)."""
        raise NotImplementedError

    def initial_state(self, path) -> Array:
        """The solver's initial state: $A X(t_0) + a$."""
        return self.initial(path.coeffs[0, 0])

    def observe(self, y) -> Array:
        """The hidden state $z$ of a solver state (the identity but for `GSDE`)."""
        return y

    def solve(self, path, key: PRNGKeyArray | None, saveat: sk.SaveAt | None = None) -> sk.Solution:
        """`sk.solve` of the model's equation along the series' grid (see `sdekit.neural`)."""
        problem, y0 = self.problem(), self.initial_state(path)
        options = dict(solver=self.solver, adjoint=self.adjoint, substeps=self.substeps, saveat=saveat)
        if isinstance(problem, sk.ODE):
            return solve_ode(problem, y0, path, **options)
        return solve_sde(problem, y0, path, key=key, **options)

    def final_state(self, path, key: PRNGKeyArray | None) -> Array:
        """The hidden state at the last observation of the series (`path`)."""
        return self.observe(self.solve(path, key).ys[-1])

    def trajectory(self, times: Float[ArrayLike, " L"], values: Float[ArrayLike, "L C"], *,
                   key: PRNGKeyArray | None) -> Float[Array, "L hidden"]:
        """The hidden state at every observation time (padding repeats the last one); not with
        `sk.adjoint.Reversible` (it keeps only the final state)."""
        path = self.path(times, values)
        knots = jnp.arange(path.ts.shape[0], dtype=path.ts.dtype)
        return jax.vmap(self.observe)(self.solve(path, key, sk.SaveAt(ts=knots)).ys)

    def __call__(self, times: Float[ArrayLike, " L"], values: Float[ArrayLike, "L C"], *, key: PRNGKeyArray
                 ) -> Float[Array, " out"]:
        """Logits (classification) or outputs (regression) of one series: a linear readout of
        the hidden state at the last observation. NaN values are missing; times repeating the
        last one at the end are padding."""
        return self.readout(self.final_state(self.path(times, values), key))


class StableModel(SeriesModel):
    r"""Base of the stable classes `LSDE`, `LNSDE` and `GSDE` (Oh, Lim & Kim 2024): the
    tanh-clipped drift network $\gamma$ (`StableDrift`, with the time features unless
    `time_features` is False) and the time-only diffusion scale $\sigma(t)$ (`TimeScale`)."""

    drift_net: StableDrift
    sigma: TimeScale

    time_features: ClassVar[bool] = True

    def init_networks(self, drift_key, sigma_key):
        self.drift_net = StableDrift(self.in_size + 1, self.hidden_size, self.width, self.depth,
                                     time_features=self.time_features, key=drift_key)
        self.sigma = TimeScale(self.hidden_size, self.width, key=sigma_key)
