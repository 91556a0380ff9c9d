"""Neal's funnel in 10-D: underdamped Langevin MCMC (sdekit.mcmc) against numpyro's NUTS.

The single-seed paper's experiment (Jelinčič, Foster, Kidger, arXiv 2405.06464, §5; settings from
the authors' repository, ../shared/reference/experiments.md §2): x0 ~ N(0, 9), x_{1..9} | x0 ~
N(0, e^{x0}); ULD with gamma = u = 1; 64 chains x 128 states, 2 time units apart, after a warm-up
solve to T = 32 with 4x the tolerance (here 16 transitions of 2).

- QUICSORT adaptive: step doubling (`half_step`) + PID (rtol 0, atol 2^-6, pcoeff 0.1, icoeff 0.4),
  dtmin 2^-14 and Brownian tol 2^-15 (unforced: a solve needing a smaller step fails); with
  `--paper-dtmin`, the paper's dtmin 2^-10 with `sk.PID(force_dtmin=True)` and tol 2^-11.
- QUICSORT constant: step 2^-8.
- ALIGN adaptive: its embedded estimate + the same PID, dtmin = Brownian tol = 2^-14.
- NUTS (numpyro): initial step size 2.0, 16 warm-up steps (step size and diagonal mass adapted),
  128 samples, 64 vectorised chains.

Two gradient variants: the exact gradient of log pi, and the reference code's, where the y-block's
scale e^{x0/2} is under stop_gradient (so d/dx0 keeps only the prior's -x0/9).

Metrics (ours; the paper's weighting is not reproduced): gradient evaluations per kept state and
per effective sample (sampling phase; warm-up reported apart), mean error = RMS over the 10
coordinates of the pooled sample mean (the truth is 0), covariance error = RMS over entries of
cov(z) - I for the rescaled z = (x0/3, x_i e^{-x0/2}) (iid N(0, 1) under the target), ESS =
numpyro's effective sample size averaged over coordinates, ESS fraction = ESS / (64 x 128).

Then the throughput (gradient evaluations per second, 64 chains, constant-step QUICSORT and
NUTS sampling, all compiled before timing) of sdekit, diffrax's QUICSORT and numpyro's NUTS in one
process.

Usage: python benchmarks/langevin_funnel.py [--quick] [--skip-constant] [--variant stop|exact|both]
"""

import argparse
import time

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer import MCMC, NUTS

import sdekit as sk
import sdekit.mcmc as skm

DIM, CHAINS, SAMPLES, SEP, WARMUP_T = 10, 64, 128, 2.0, 32.0


def logdensity(x, stop=False):
    x0, y = x[0], x[1:]
    log_scale = x0 / 2
    if stop:
        log_scale = jax.lax.stop_gradient(log_scale)
    return -x0**2 / 18 - 0.5 * jnp.sum(y**2) * jnp.exp(-2 * log_scale) - (DIM - 1) * log_scale


def metrics(x):
    """x: (chains, samples, 10)."""
    x = np.asarray(x, np.float64)
    mean_err = float(np.sqrt(np.mean(x.reshape(-1, DIM).mean(0) ** 2)))
    z = np.concatenate([x[..., :1] / 3, x[..., 1:] * np.exp(-x[..., :1] / 2)], -1).reshape(-1, DIM)
    cov_err = float(np.sqrt(np.mean((np.cov(z.T) - np.eye(DIM)) ** 2)))
    ess = float(np.mean(skm.effective_sample_size(x)))
    return mean_err, cov_err, ess


def pid(atol, dtmin=2**-10, force=False):
    return sk.PID(rtol=0.0, atol=atol, pcoeff=0.1, icoeff=0.4, dtmin=dtmin, force_dtmin=force)


def run_uld(name, solver, stop, adaptive, samples, paper_dtmin=False):
    grad_f = jax.grad(lambda x: -logdensity(x, stop))
    opts = dict(grad_f=grad_f, solver=solver, gamma=1.0, u=1.0, max_steps=2**14, throw=False)
    if adaptive:
        # sk.PID has no diffrax-style force_dtmin (accept a step at dtmin whatever its error): a
        # solve that needs a smaller step fails. So dtmin is 2^-14 (the paper: 2^-10, forced), with
        # the tree's tol at most the smallest step (half of it with step doubling).
        # With `paper_dtmin`: the paper's dtmin 2^-10, forced (sk.PID(force_dtmin=True)), tol 2^-11.
        halves = getattr(solver.sde, "halves", False)
        smallest = 2**-10 if paper_dtmin else 2**-14
        dtmin, tol = (smallest, smallest / 2) if halves else (smallest, smallest)
        warm = skm.uld(**opts, step_size=0.1, sample_time=SEP, controller=pid(4 * 2**-6, dtmin, paper_dtmin),
                       brownian_tol=tol)
        main = skm.uld(**opts, step_size=0.1, sample_time=SEP, controller=pid(2**-6, dtmin, paper_dtmin),
                       brownian_tol=tol)
    else:
        warm = skm.uld(**opts, step_size=2**-8, sample_time=SEP)
        main = skm.uld(**opts, step_size=2**-8, sample_time=SEP)
    keys = jax.random.split(jax.random.key(0), CHAINS)
    states = jax.vmap(warm.init)(jax.vmap(lambda k: jax.random.normal(k, (DIM,)))(keys), keys)
    run = jax.jit(skm.sample, static_argnums=(1, 3), static_argnames=("thin",))
    start = time.perf_counter()
    warmed = run(jax.random.key(1), warm.step, states, 1, thin=int(WARMUP_T / SEP))
    out = run(jax.random.key(2), main.step, warmed.final_state, samples)
    x = jax.block_until_ready(out.positions)
    seconds = time.perf_counter() - start
    mean_err, cov_err, ess = metrics(x)
    grads = float(out.num_grad_evals.sum())
    return dict(name=name, stop=stop, per_sample=grads / (CHAINS * samples), per_ess=grads / ess, mean_err=mean_err,
                cov_err=cov_err, ess_frac=ess / (CHAINS * samples), warmup=float(warmed.num_grad_evals.mean()),
                rejected=float(out.num_rejected.sum()) / max(float(out.num_steps.sum()), 1.0), seconds=seconds,
                failed=int(out.num_failed.sum()) + int(warmed.num_failed.sum()))


def run_nuts(stop, samples):
    kernel = NUTS(potential_fn=lambda x: -logdensity(x, stop), step_size=2.0)
    mcmc = MCMC(kernel, num_warmup=16, num_samples=samples, num_chains=CHAINS, chain_method="vectorized",
                progress_bar=False)
    init = jax.random.normal(jax.random.key(3), (CHAINS, DIM))
    start = time.perf_counter()
    mcmc.run(jax.random.key(4), init_params=init, extra_fields=("num_steps",))
    x = mcmc.get_samples(group_by_chain=True)
    seconds = time.perf_counter() - start
    steps = np.asarray(mcmc.get_extra_fields(group_by_chain=True)["num_steps"], np.float64)
    mean_err, cov_err, ess = metrics(x)
    return dict(name="NUTS (numpyro)", stop=stop, per_sample=steps.mean(), per_ess=steps.sum() / ess,
                mean_err=mean_err, cov_err=cov_err, ess_frac=ess / (CHAINS * samples), warmup=float("nan"),
                rejected=float("nan"), seconds=seconds, failed=0)


def throughput(quick):
    """Gradient evaluations per second, 64 chains, compiled before timing, best of 3."""
    grad_f = jax.grad(lambda x: -logdensity(x))
    t1, h = (8.0, 2**-6) if quick else (32.0, 2**-6)
    n_steps = int(t1 / h)
    keys = jax.random.split(jax.random.key(5), CHAINS)
    x0 = jax.vmap(lambda k: jax.random.normal(k, (DIM,)))(keys)
    problem = sk.UnderdampedLangevin(lambda x, a: grad_f(x), 1.0, 1.0)

    @jax.jit
    def ours(keys, x0):
        def one(key, x):
            tree = sk.BrownianTree(key, 0.0, t1, shape=(DIM,), tol=h / 2, levy="space-time-time")
            return sk.solve(problem, sk.solvers.quicsort(), 0.0, t1, (x, jnp.zeros(DIM)), dt0=h, brownian=tree,
                            max_steps=n_steps).ys[0][-1]

        return jax.vmap(one)(keys, x0)

    @jax.jit
    def theirs(keys, x0):
        def one(key, x):
            bm = diffrax.VirtualBrownianTree(0.0, t1, tol=h / 2, shape=(DIM,), key=key,
                                             levy_area=diffrax.SpaceTimeTimeLevyArea)
            terms = diffrax.MultiTerm(diffrax.UnderdampedLangevinDriftTerm(1.0, 1.0, lambda x, a: grad_f(x)),
                                      diffrax.UnderdampedLangevinDiffusionTerm(1.0, 1.0, bm))
            return diffrax.diffeqsolve(terms, diffrax.QUICSORT(), 0.0, t1, h, (x, jnp.zeros(DIM)),
                                       max_steps=n_steps + 1).ys[0][-1]

        return jax.vmap(one)(keys, x0)

    rates = {}
    for label, fn in (("sdekit QUICSORT", ours), ("diffrax QUICSORT", theirs)):
        jax.block_until_ready(fn(keys, x0))
        best = min(_timed(fn, keys, x0) for _ in range(3))
        rates[label] = 2 * n_steps * CHAINS / best
    kernel = NUTS(potential_fn=lambda x: -logdensity(x), step_size=2.0)
    mcmc = MCMC(kernel, num_warmup=16, num_samples=64 if quick else 128, num_chains=CHAINS, chain_method="vectorized",
                progress_bar=False)
    mcmc.run(jax.random.key(6), init_params=x0, extra_fields=("num_steps",))
    best = float("inf")
    for i in range(3):
        mcmc.post_warmup_state = mcmc.last_state
        start = time.perf_counter()
        mcmc.run(mcmc.post_warmup_state.rng_key, extra_fields=("num_steps",))
        jax.block_until_ready(mcmc.get_samples())
        elapsed = time.perf_counter() - start
        if elapsed < best:
            best, grads = elapsed, float(np.sum(mcmc.get_extra_fields()["num_steps"]))
    rates["numpyro NUTS"] = grads / best
    return rates


def _timed(fn, *args):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="32 states per chain and a short throughput run")
    parser.add_argument("--skip-constant", action="store_true", help="skip constant-step QUICSORT (the slowest)")
    parser.add_argument("--variant", choices=("stop", "exact", "both"), default="both",
                        help="gradient variant: the reference code's stop_gradient, the exact gradient, or both")
    parser.add_argument("--paper-dtmin", action="store_true",
                        help="adaptive solves with the paper's dtmin 2^-10, forced (sk.PID(force_dtmin=True))")
    parser.add_argument("--skip-nuts", action="store_true", help="skip NUTS")
    parser.add_argument("--skip-throughput", action="store_true", help="skip the throughput comparison")
    options = parser.parse_args()
    samples = 32 if options.quick else SAMPLES
    rows = []
    for stop in {"stop": (True,), "exact": (False,), "both": (True, False)}[options.variant]:
        forced = " (dtmin 2^-10 forced)" if options.paper_dtmin else ""
        added = [run_uld("QUICSORT adaptive" + forced, sk.solvers.half_step(sk.solvers.quicsort()), stop, True, samples,
                         options.paper_dtmin)]
        if not options.skip_constant:
            added.append(run_uld("QUICSORT constant 2^-8", sk.solvers.quicsort(), stop, False, samples))
        added.append(run_uld("ALIGN adaptive" + forced, sk.solvers.align(), stop, True, samples, options.paper_dtmin))
        if not options.skip_nuts:
            added.append(run_nuts(stop, samples))
        for row in added:
            print(row, flush=True)
        rows += added
    print(f"\n{CHAINS} chains x {samples} states; jax {jax.__version__}, backend {jax.default_backend()}\n")
    print("| Method | gradient | grads / sample | grads / ESS | mean err | cov err | ESS frac | warm-up grads/chain | rejected | failed solves | wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {'stop_gradient' if r['stop'] else 'exact'} | {r['per_sample']:.1f} | {r['per_ess']:.0f} | "
              f"{r['mean_err']:.3f} | {r['cov_err']:.3f} | {r['ess_frac']:.3f} | {r['warmup']:.0f} | "
              f"{r['rejected']:.2f} | {r['failed']} | {r['seconds']:.1f} |")
    if options.skip_throughput:
        return
    rates = throughput(options.quick)
    print("\n| Throughput, 64 chains | gradient evaluations / s |\n|---|---|")
    for label, rate in rates.items():
        print(f"| {label} | {rate:,.0f} |")


if __name__ == "__main__":
    main()
