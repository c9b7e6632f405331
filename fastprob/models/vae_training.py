"""Training of :class:`BoostedVAE`: boosting stages, Algorithm 1 for rho, fine-tuning, decoder-shock mitigation.

Stage ``boost c`` trains component g_c with the earlier ones frozen (the encoder and the
decoder are shared and keep training).  For c = 0 the loss is the usual annealed -ELBO,

    -log p(x | z) + beta (log g_0(z | x) - log p(z)),            z ~ g_0(z | x).

For c >= 1 it is eq. 4.21 (with the erratum read as lambda E_g[log g] - E_g[log p]):

    -log p(x | z) + beta (log G_{c-1}(z | x) + lambda log g_c(z | x) - log p(z)),   z ~ g_c(z | x),

where G_{c-1} is the whole fixed mixture (every component inverted, logsumexp with the
weights).  That objective is unbounded below (g_c gains by fleeing G_{c-1}), so log G_{c-1}
is floored at an explicit, reported ``log_prev_floor``; ``objective="mixture"`` is the
bounded alternative (see :func:`fit_boosted_vae`).  beta is the KL-annealing weight, reset
at every stage (thesis 4.5.4).
After the stage, rho_c is set by :func:`update_rho` (Algorithm 1, corrected stopping rule).

Decoder-shock mitigation (thesis 4.5.4): while g_c trains, a fraction r of the samples
(``mitigation="sample"``) or of the batches (``"batch"``, the published code's variant)
is drawn from the fixed G_{c-1} instead and contributes only its reconstruction term, so
the shared decoder keeps seeing the old posterior; r is annealed linearly from 0 to
``mix_max`` (0.5) over the stage.  ``mitigation="off"`` shows the shock.

Fine-tuning (``finetune_epochs``): one more pass, component c retrained against the
mixture of all the others G_{-c} (weights renormalized); then rho_1..rho_{C-1} are
re-computed in order by Algorithm 1 (thesis 4.7.5, "GBNF+").
"""
from __future__ import annotations

import math
import os
import time

import torch

from .. import _config
from .._io import atomic_torch_save

MITIGATIONS = ("sample", "batch", "off")


def update_rho(grad_fn, rho0: float, step: float = 0.1, decay: float = 1.0, tol: float = 1e-3,
               max_iter: int = 500):
    """Thesis Algorithm 1 with the corrected loop condition.

    rho_t = clip(rho_{t-1} - step / t**decay * grad_fn(rho_{t-1}), [0, 1]), stopping at the
    first t where |rho_t - rho_{t-1}| < tol (the thesis prints the inverted test ``while
    |...| < tol``, which would stop at once), or after ``max_iter`` iterations.

    Parameters
    ----------
    grad_fn : callable float -> float
        A (stochastic) estimate of dF/drho at the given rho.
    rho0 : float in [0, 1]

    Returns
    -------
    rho : float
    trace : list of float
        rho_0, rho_1, ..., rho_T.
    converged : bool
        False when ``max_iter`` was reached before the change fell below ``tol``.
    """
    if not (0.0 <= rho0 <= 1.0):
        raise ValueError(f"rho0 must lie in [0, 1], got {rho0}")
    if step <= 0 or tol <= 0 or max_iter < 1 or decay < 0:
        raise ValueError("update_rho needs step > 0, tol > 0, decay >= 0 and max_iter >= 1")
    prev = float(rho0)
    trace = [prev]
    for t in range(1, max_iter + 1):
        g = float(grad_fn(prev))
        if not math.isfinite(g):
            raise FloatingPointError(f"non-finite gradient estimate for rho at iteration {t} (rho = {prev})")
        rho = min(1.0, max(0.0, prev - step / t ** decay * g))
        trace.append(rho)
        if abs(rho - prev) < tol:
            return rho, trace, True
        prev = rho
    return prev, trace, False


def _check_train_data(model, x, dynamic):
    x = torch.as_tensor(x).float()
    if dynamic:
        if model.likelihood != "bernoulli":
            raise ValueError("dynamic binarization is for the Bernoulli likelihood")
        if x.dim() != 2 or x.shape[1] != model.x_dim:
            raise ValueError(f"expected data of shape (N, {model.x_dim}), got {tuple(x.shape)}")
        if not torch.isfinite(x).all() or x.min() < 0 or x.max() > 1:
            raise ValueError("dynamic binarization needs pixel probabilities in [0, 1] (scale the images first)")
        return x
    return model.check_x(x)


def _stages(C, finetune_epochs):
    st = [("boost", c) for c in range(C)]
    if finetune_epochs:
        st += [("finetune", c) for c in range(C)]
        if C > 1:
            st.append(("reweight", None))  # thesis 4.7.5: rho re-computed after fine-tuning
    return st


def _prev_mixture(model, kind, c):
    """(upto, exclude) of the fixed part G_{c-1} / G_{-c}; None when there is none."""
    if kind == "boost":
        return (c, None) if c > 0 else None
    w = model.posterior.weights()
    if float(w.sum() - w[c]) <= 0:  # the others have no weight left: nothing fixed to boost against
        return None
    return (model.n_components, c)


def stage_loss(model, x, kind, c, beta, mix=0.0, mitigation="sample", objective="boosting", log_prev_floor=-10.0,
               stats=None):
    """Per-datum loss (B,) of stage (kind, c) and its reconstruction part (see module doc).

    ``stats`` (a dict, optional) receives ``floored``: the fraction of samples whose
    log G_{c-1} was raised to ``log_prev_floor`` (eq. 4.21 objective only)."""
    stats = {} if stats is None else stats
    ctx = model.encode(x)
    z, log_g = model.components[c].rsample(ctx)
    rec = -model.log_lik(x, z)
    prev = _prev_mixture(model, kind, c)
    if prev is None:
        per = rec + beta * (log_g - model.log_prior(z))
    else:
        # the fixed mixture is a constant of this stage: its own encoder output is detached,
        # gradients reach the new component through z only
        log_prev = model.mixture_log_prob(z, ctx.detach(), upto=prev[0], exclude=prev[1])
        if objective == "boosting":
            if log_prev_floor is not None:
                stats["floored"] = float((log_prev < log_prev_floor).float().mean())
                log_prev = torch.clamp(log_prev, min=log_prev_floor)
            per = rec + beta * (log_prev + model.entropy_reg * log_g - model.log_prior(z))
        else:  # the whole new mixture at a trial weight r0: log G_c >= log r0 + log g_c, bounded below
            r0 = 1.0 / (c + 1) if kind == "boost" else float(model.posterior.weights()[c])
            if kind == "finetune" and r0 <= 0.0:
                # a component with no weight left (a later rho = 1) is still fine-tuned, and the
                # re-weighting after fine-tuning can give it weight again; at r0 = 0 its own density
                # would drop out of the loss and nothing would keep it from collapsing onto what
                # reconstructs best (seen on Fashion-MNIST: NLL 267 -> 830), so use the trial
                # weight 1 / C of a component being (re-)added
                r0 = 1.0 / model.n_components
            if r0 >= 1.0:
                log_G = log_g
            else:
                log_G = torch.logaddexp(log_prev + math.log(1 - r0), log_g + math.log(r0))
            per = rec + beta * (log_G - model.log_prior(z))
        if mix > 0 and mitigation != "off":
            if mitigation == "sample":
                m = torch.rand(x.shape[0], device=x.device) < mix
            else:
                m = (torch.rand((), device=x.device) < mix).expand(x.shape[0])
            idx = m.nonzero().flatten()
            if idx.numel():
                z_old = model.sample_mixture(ctx[idx].detach(), upto=prev[0], exclude=prev[1])
                per = per.clone()
                per[idx] = -model.log_lik(x[idx], z_old)  # decoder-only term for the old samples
    return per, rec


OBJECTIVES = ("boosting", "mixture")


def rho_gradient(model, x, c, rho):
    """Monte Carlo dF/drho_c = mean_i gamma(z_new_i) - gamma(z_old_i) (thesis 4.5.3),
    gamma = log((1 - rho) G_{c-1}(z | x) + rho g_c(z | x)) - log p(x, z)."""
    with torch.no_grad():
        ctx = model.encode(x)
        z_new = model.components[c].sample(x.shape[0], context=ctx)
        z_old = model.sample_mixture(ctx, upto=c)
        lr1 = math.log(1 - rho) if rho < 1 else -math.inf
        lr2 = math.log(rho) if rho > 0 else -math.inf

        def gamma(z):
            a = model.mixture_log_prob(z, ctx, upto=c) + lr1
            b = model.components[c].log_prob(z, ctx) + lr2
            return torch.logaddexp(a, b) - model.log_lik(x, z) - model.log_prior(z)

        return float((gamma(z_new) - gamma(z_old)).mean())


@torch.no_grad()
def _val_neg_elbo(model, x, upto=None, only=None):
    """One-sample -ELBO on x of the mixture of components < upto, or of component ``only``."""
    ctx = model.encode(x)
    if only is not None:
        z, log_q = model.components[only].rsample(ctx)
    else:
        z = model.sample_mixture(ctx, upto=upto)
        log_q = model.mixture_log_prob(z, ctx, upto=upto)
    return float(-(model.log_lik(x, z) + model.log_prior(z) - log_q).mean())


def fit_boosted_vae(model, x_train, x_val, epochs: int = 20, finetune_epochs: int = 0, batch_size: int = 100,
                    lr: float = 1e-3, kl_anneal_epochs: float = 5, mitigation: str = "sample", mix_max: float = 0.5,
                    dynamic_binarize: bool = False, rho_step: float = 0.5, rho_tol: float = 1e-3,
                    rho_max_iter: int = 300, rho_batch: int = 500, objective: str = "boosting",
                    log_prev_floor: float | None = -10.0, seed: int = 0, checkpoint: str | None = None,
                    max_epochs: int | None = None, progress: bool = True):
    """Train a :class:`BoostedVAE` stage by stage (see the module docstring).

    Parameters
    ----------
    x_train : (N, x_dim) tensor
        Data for the likelihood, or pixel probabilities in [0, 1] when ``dynamic_binarize``
        (a fresh Bernoulli draw per batch).
    x_val : (M, x_dim) tensor
        Held-out data for the per-epoch validation -ELBO (already binarized for Bernoulli).
    epochs : int
        Epochs per boosting stage; ``finetune_epochs`` per fine-tuning stage (0: none).
    kl_anneal_epochs : float
        beta rises linearly from 0 to 1 over this many epochs of each boosting stage (0: off).
    mitigation : "sample" | "batch" | "off"
    objective : "boosting" | "mixture"
        "boosting": eq. 4.21.  Its log G_{c-1}(z | x) term rewards moving g_c to where the
        fixed mixture has no mass and is unbounded below (training diverges without a floor),
        so it is floored at ``log_prev_floor`` (the published code's -10; None: no floor) and
        the floored fraction is reported per epoch.  "mixture": minimize the -ELBO
        contribution of g_c inside G_c = (1 - r0) G_{c-1} + r0 g_c at r0 = 1 / (c + 1), which
        is bounded below and needs no floor.  Evaluation never floors anything.
    checkpoint : str, optional
        File written atomically after every epoch; if it exists, training resumes from it.
    max_epochs : int, optional
        Stop after this many epochs in this call (resume later from ``checkpoint``).

    Returns
    -------
    history : dict
        ``epochs`` (one record per epoch: stage, component, loss, reconstruction, validation
        -ELBO of the fixed mixture and of the new component, beta, mixing rate, seconds),
        ``rho`` (one record per Algorithm 1 run, including the re-computation after
        fine-tuning), ``done``.
    """
    if mitigation not in MITIGATIONS:
        raise ValueError(f"mitigation must be one of {MITIGATIONS}, got {mitigation!r}")
    if not (isinstance(epochs, int) and epochs >= 1) or finetune_epochs < 0:
        raise ValueError("epochs must be an integer >= 1 and finetune_epochs >= 0")
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    if not 0 <= mix_max <= 1:
        raise ValueError(f"mix_max must lie in [0, 1], got {mix_max}")
    if batch_size < 1 or lr <= 0 or kl_anneal_epochs < 0:
        raise ValueError("batch_size >= 1, lr > 0 and kl_anneal_epochs >= 0 are required")
    x_train = _check_train_data(model, x_train, dynamic_binarize)
    x_val = model.check_x(x_val)
    C = model.n_components
    stages = _stages(C, finetune_epochs)
    hist = {"epochs": [], "rho": [], "done": False}
    pos = {"stage": 0, "epoch": 0, "step": 0}
    opt_state = None
    torch.manual_seed(seed)
    if checkpoint and os.path.exists(checkpoint):
        ck = torch.load(checkpoint, weights_only=False)
        if ck.get("config") != model.config:
            raise ValueError(f"checkpoint {checkpoint} was written for a different model configuration "
                             f"{ck.get('config')}; use another --out or delete it")
        model.load_state_dict(ck["model"])
        hist, pos, opt_state = ck["history"], ck["pos"], ck["opt"]
        torch.set_rng_state(ck["rng"])
    n_ep_of = {"boost": epochs, "finetune": finetune_epochs, "reweight": 0}
    total = sum(n_ep_of[k] for k, _ in stages)
    done_ep = sum(n_ep_of[k] for k, _ in stages[:pos["stage"]]) + pos["epoch"]
    bar = None
    if progress and _config.config.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, initial=done_ep, desc="boosted VAE", unit="epoch")
    n_this_call = 0
    N = x_train.shape[0]
    model.train()
    try:
        for si in range(pos["stage"], len(stages)):
            kind, c = stages[si]
            if kind == "reweight":
                for cc in range(1, C):
                    _finish_component(model, cc, x_train, dynamic_binarize, rho_step, rho_tol, rho_max_iter,
                                      rho_batch, hist)
                pos.update(stage=si + 1, epoch=0)
                continue
            n_ep = epochs if kind == "boost" else finetune_epochs
            for p in model.parameters():
                p.requires_grad_(False)
            train_mods = [model.encoder, model.decoder, model.components[c]]
            params = [p for m in train_mods for p in m.parameters()]
            if model.dec_log_scale is not None:
                params.append(model.dec_log_scale)
            for p in params:
                p.requires_grad_(True)
            opt = torch.optim.Adam(params, lr=lr)
            if opt_state is not None:
                opt.load_state_dict(opt_state)
                opt_state = None
            steps_per_epoch = math.ceil(N / batch_size)
            for ep in range(pos["epoch"], n_ep):
                if max_epochs is not None and n_this_call >= max_epochs:
                    return hist
                t0, c0 = time.perf_counter(), time.process_time()
                perm = torch.randperm(N)
                tot, tot_rec, floored = 0.0, 0.0, 0.0
                for i in range(0, N, batch_size):
                    frac = ep + (i // batch_size) / steps_per_epoch  # epochs done within this stage
                    beta = min(1.0, frac / kl_anneal_epochs) if (kind == "boost" and kl_anneal_epochs) else 1.0
                    mix = mix_max * min(1.0, frac / n_ep) if kind == "boost" else mix_max
                    xb = x_train[perm[i:i + batch_size]]
                    if dynamic_binarize:
                        xb = torch.bernoulli(xb)
                    st = {}
                    per, rec = stage_loss(model, xb, kind, c, beta, mix, mitigation, objective, log_prev_floor, st)
                    floored += st.get("floored", 0.0) * xb.shape[0]
                    loss = per.mean()
                    if not torch.isfinite(loss):
                        raise FloatingPointError(f"non-finite loss in stage {kind} {c}, epoch {ep}; lower lr")
                    opt.zero_grad()
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(params, 100.0)
                    opt.step()
                    tot += float(loss.detach()) * xb.shape[0]
                    tot_rec += float(rec.detach().mean()) * xb.shape[0]
                    pos["step"] += 1
                secs, cpu = time.perf_counter() - t0, time.process_time() - c0
                model.eval()
                n_tr = int(model.n_trained)
                rec = {"stage": kind, "component": c, "epoch": ep, "step": pos["step"], "loss": tot / N,
                       "reconstruction": tot_rec / N, "floored": floored / N, "beta": beta,
                       "mix": mix if _prev_mixture(model, kind, c) and mitigation != "off" else 0.0,
                       "val_neg_elbo_new": _val_neg_elbo(model, x_val, only=c),
                       "val_neg_elbo_fixed": _val_neg_elbo(model, x_val, upto=n_tr) if n_tr else None,
                       "seconds": secs, "cpu_seconds": cpu}
                model.train()
                hist["epochs"].append(rec)
                pos["epoch"] = ep + 1
                n_this_call += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(stage=f"{kind} {c}", loss=f"{rec['loss']:.2f}")
                if pos["epoch"] < n_ep and checkpoint:
                    _save(checkpoint, model, opt, hist, pos)
            if kind == "boost":
                _finish_component(model, c, x_train, dynamic_binarize, rho_step, rho_tol, rho_max_iter, rho_batch,
                                  hist)
            pos.update(stage=si + 1, epoch=0)
            if checkpoint:
                _save(checkpoint, model, None, hist, pos)
        hist["done"] = True
        for p in model.parameters():
            p.requires_grad_(False)
        model.eval()
        if checkpoint:
            _save(checkpoint, model, None, hist, pos)
        return hist
    finally:
        if bar is not None:
            bar.close()


def _finish_component(model, c, x_train, dynamic, step, tol, max_iter, batch, hist):
    rho = model.posterior.rho.clone()
    if c == 0:
        r, trace, conv = 1.0, [1.0], True
    else:
        model.eval()

        def grad(r):
            xb = x_train[torch.randint(0, x_train.shape[0], (batch,))]
            return rho_gradient(model, torch.bernoulli(xb) if dynamic else xb, c, r)

        r, trace, conv = update_rho(grad, 1.0 / model.n_components, step=step, tol=tol, max_iter=max_iter)
        model.train()
    rho[c] = r
    model.posterior.set_rho(rho)
    model.n_trained.fill_(max(int(model.n_trained), c + 1))
    hist["rho"].append({"component": c, "rho": r, "iterations": len(trace) - 1, "converged": conv,
                        "weights": model.posterior.weights().tolist()})


def _save(path, model, opt, hist, pos):
    atomic_torch_save({"config": model.config, "model": model.state_dict(),
                       "opt": opt.state_dict() if opt is not None else None, "history": hist, "pos": dict(pos),
                       "rng": torch.get_rng_state()}, path)
