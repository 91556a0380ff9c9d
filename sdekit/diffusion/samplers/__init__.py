"""Diffusion samplers: each an `sk.solvers.Solver` of the probability-flow ODE (deterministic)
or of the reverse-time SDE (stochastic), run by `skd.sample` or `sk.solve`."""

from ._ddim import ddim as ddim, euler as euler, euler_ancestral as euler_ancestral
from ._heun import heun as heun
from ._dpm_solver import dpm_solver as dpm_solver, dpm_solver_fast_grid as dpm_solver_fast_grid
from ._dpm_solver_pp import dpm_solver_pp as dpm_solver_pp
from ._dpm_solver_pp_sde import dpm_solver_pp_sde as dpm_solver_pp_sde, midpoint_grid as midpoint_grid
from ._er_sde import er_sde as er_sde
from ._predictor_corrector import predictor_corrector as predictor_corrector
from ._unipc import unipc as unipc
from ._deis import deis as deis
from ._ipndm import ipndm as ipndm

__all__ = ["ddim", "euler", "euler_ancestral", "heun",
           "dpm_solver", "dpm_solver_fast_grid", "dpm_solver_pp", "dpm_solver_pp_sde", "midpoint_grid", "er_sde", "predictor_corrector",
           "unipc", "deis", "ipndm"]
