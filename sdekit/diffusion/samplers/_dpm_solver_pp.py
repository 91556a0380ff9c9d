r"""DPM-Solver++ (Lu et al. 2022, arXiv 2211.01095): DPM-Solver with the data prediction
$\hat x_0$, which takes dynamic thresholding (`skd.Threshold` on the model) and is stable
under large guidance. The engine is `_dpm_solver.py`'s with $\eta = -h$, $c_t = \alpha_t$.

From $s$ to $t$, $h = \lambda_t - \lambda_s$ (exact on the linear part):

$$x_t = \frac{\sigma_t}{\sigma_s}x_s + \alpha_t\int_0^h e^{-(h-u)}\,\hat x_0(\lambda_s + u)\,du.$$

- ++1 (DDIM): $x_t = \frac{\sigma_t}{\sigma_s}x_s - \alpha_t(e^{-h} - 1)\hat x_0(s)$.
- ++(2M): $x_t = \frac{\sigma_t}{\sigma_s}x_s - \alpha_t(e^{-h} - 1)\bigl[(1 + \tfrac1{2r})\hat x_0(s) - \tfrac1{2r}\hat x_0(s_{-1})\bigr]$,
  $r = (\lambda_s - \lambda_{s-1})/h$: k-diffusion's `sample_dpmpp_2m`, diffusers'
  `DPMSolverMultistepScheduler(algorithm_type="dpmsolver++")` ("midpoint").
- ++(3M): $x_t = x_t^{(1)} + \alpha_t\varphi_2 D_1 - w\,\alpha_t\varphi_3 D_2$,
  $\varphi_2 = (e^{-h} - 1)/h + 1$, $\varphi_3 = \varphi_2/h - \tfrac12$, with $D_1, D_2$ the
  scaled divided differences of $\hat x_0$ in $\lambda$ (`_dpm_solver.py`). $w = 1$
  (`third_order="reference"`) is k-diffusion's `sample_dpmpp_3m_sde(eta=0)` and diffusers with
  `solver_type="heun"`, which converge at order 2 only since $D_2 \approx \tfrac12h^2\hat x_0''$;
  $w = 2$ (default) is the exact integral of the quadratic, order 3. The order-2 warm-up step
  is $x_t^{(1)} + \alpha_t\varphi_2(\hat x_0(s) - \hat x_0(s_{-1}))/r$ ("heun", as k-diffusion).
- ++(2S), singlestep, $r_1 = \tfrac12$: $u = \frac{\sigma_{s_1}}{\sigma_s}x_s - \alpha_{s_1}(e^{-r_1h} - 1)\hat x_0(s)$
  at $\lambda_{s_1} = \lambda_s + r_1h$, the midpoint in $\lambda$ ($\sigma_{s_1} = \sqrt{\sigma_s\sigma_t}$
  when $\alpha = 1$), then $x_t = \frac{\sigma_t}{\sigma_s}x_s - \alpha_t(e^{-h} - 1)\bigl[\hat x_0(s) + \frac{\hat x_0(u) - \hat x_0(s)}{2r_1}\bigr]$,
  which for $r_1 = \tfrac12$ uses $\hat x_0(u)$ alone: k-diffusion's `sample_dpmpp_2s_ancestral(eta=0)`.
  ++(3S) ($r = \tfrac13, \tfrac23$) is DPM-Solver-3's update in this form.

Orders 1, 2, 3 (multistep: one evaluation per step; singlestep: `order` per step). A step to
$\sigma_t = 0$ returns $\hat x_0(s)$ (one evaluation), as k-diffusion and diffusers do.
"""

import sdekit as sk

from ._dpm_solver import make


def dpm_solver_pp(order: int = 2, method: str = "multistep", steps: int | None = None,
                  lower_order_final: bool = True, solver_type: str | None = None,
                  third_order: str = "exact") -> sk.solvers.Solver:
    r"""DPM-Solver++ (Lu et al. 2022, arXiv 2211.01095): 2M, 3M, 2S (and 1, 3S); a solver of
    `skd.probability_flow(model)` using the data prediction `model.x0` (thresholded if the
    model has an `skd.Threshold`). See this module's docstring for the updates.

    Args:
        order: 1, 2 or 3.
        method: `"multistep"` (one evaluation per step, warm-up order $\min(k, i + 1)$) or
            `"singlestep"` (`order` evaluations per step; order 2 is ++(2S) with $r_1 = \tfrac12$).
        steps: the grid's number of steps, for `lower_order_final`: with it, on grids of fewer
            than 15 steps the last step is first order and the one before at most second
            (diffusers' rule). Without it (the default) only a step to $\sigma = 0$ is first
            order, which is k-diffusion's `sample_dpmpp_2m`/`3m_sde` on its grids ending at 0.
        lower_order_final: see `steps`.
        solver_type: the second-order multistep update, `"midpoint"` or `"heun"`; default
            `"midpoint"` for order 2 (k-diffusion's 2M) and `"heun"` for order 3's warm-up
            (k-diffusion's 3M; diffusers' default is `"midpoint"`).
        third_order: 3M's update: `"exact"` (default; order 3) or `"reference"`, the
            coefficients of k-diffusion's `sample_dpmpp_3m_sde(eta=0)` and diffusers, whose
            $D_2$ term is half the exact one, so that they converge at order 2 only (see
            `_dpm_solver.py`); use it to reproduce them.

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit.diffusion as skd
        >>> sched = skd.EDM()
        >>> gm = skd.GaussianMixture(jnp.ones(1), jnp.zeros((1, 2)), 0.25 * jnp.eye(2)[None])
        >>> x_T = sched.prior(jax.random.key(0), (2048, 2))
        >>> ts = skd.time_grid(sched, 12, "karras", zero_end=True)
        >>> x0 = skd.sample(gm.model(sched), skd.samplers.dpm_solver_pp(order=3), x_T, ts)
        >>> round(float(jnp.std(x0)), 1)
        0.5
    """
    default = "heun" if order == 3 and method == "multistep" else "midpoint"
    return make("dpm_solver_pp", True, order, method, steps, None, lower_order_final, solver_type, third_order, default)
