"""Diffusion samplers: each an `sk.solvers.Solver` of the probability-flow ODE (deterministic)
or of the reverse-time SDE (stochastic), run by `skd.sample` or `sk.solve`."""

from ._ddim import ddim as ddim, euler as euler, euler_ancestral as euler_ancestral
from ._heun import heun as heun

__all__ = ["ddim", "euler", "euler_ancestral", "heun"]
