"""Student-teacher evaluation of conditional density models (thesis section 6.4, table 11,
figure 25).

A teacher with an exact density (:mod:`fastprob.models.toy_teachers`) generates pairs
(x = pi(y), y).  Students model p(y | x):

* :class:`ConditionalVectorFlow` - the PSR student: conditional ActNorm, conditional LU 1x1
  map and conditional coupling (bounded scale) on the 2-D y, conditioned on an MLP
  embedding of x.  Objective (the one implemented): maximum likelihood
  E_{(x, y) ~ teacher} log p_S(y | x), i.e. minimizing E_x KL(p_T(y | x) || p_S(y | x)).
* :class:`GPStudent` - scikit-learn Gaussian-process regression (Matern + white kernel).
* :class:`DropoutStudent` - an MLP with MC dropout (plus the training residual variance).

Metrics: RMSE of a point prediction against the teacher's y, and the exact earth mover's
distance (W1, Euclidean ground cost) between equal-size sample sets via an optimal
assignment (:func:`emd`).
"""
from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from ..flows.base import Flow, StandardNormal
from ..flows.conditional import ConditionalActNorm, ConditionalInvConv1x1, ConditionalVectorCoupling
from .toy_teachers import TEACHERS, make_teacher


def emd(a, b):
    """Exact earth mover's distance between two equal-size point sets (n, d): the mean
    Euclidean distance of the optimal one-to-one assignment (scipy's Hungarian solver)."""
    from scipy.optimize import linear_sum_assignment

    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"emd needs two point sets of the same shape (n, d), got {a.shape} and {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("emd: point sets contain NaN or inf")
    cost = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    r, c = linear_sum_assignment(cost)
    return float(cost[r, c].mean())


def rmse(pred, y):
    """sqrt(mean ||pred - y||^2) over points (Euclidean error of the 2-D output)."""
    return float(np.sqrt(((np.asarray(pred) - np.asarray(y)) ** 2).sum(1).mean()))


class ConditionalVectorFlow(nn.Module):
    """p(y | x) for vectors: ``depth`` steps of [conditional ActNorm, conditional LU linear
    map, conditional coupling], all conditioned on e(x), an MLP embedding of x.

    Parameters
    ----------
    dim, x_dim : int
        Sizes of y and x.
    depth, hidden, embed : int
        Flow steps, width of the coupling MLPs, size of e(x).
    """

    def __init__(self, dim=2, x_dim=1, depth=6, hidden=64, embed=16, backend=None, seed=0):
        super().__init__()
        self.dim, self.x_dim = dim, x_dim
        self.embed = nn.Sequential(nn.Linear(x_dim, hidden), nn.ReLU(), nn.Linear(hidden, embed))
        ts = []
        for k in range(depth):
            ts += [ConditionalActNorm(dim, embed), ConditionalInvConv1x1(dim, embed, seed=seed + k),
                   ConditionalVectorCoupling(dim, embed, parity=k % 2, hidden=hidden, backend=backend)]
        self.flow = Flow(StandardNormal(), ts, (dim,))

    def _ctx(self, x):
        if x.dim() != 2 or x.shape[1] != self.x_dim:
            raise ValueError(f"expected x of shape (B, {self.x_dim}), got {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError("x contains NaN or inf")
        return self.embed(x)

    def log_prob(self, y, x):
        """log p(y | x) in nats, (B,)."""
        if not torch.isfinite(y).all():
            raise ValueError("y contains NaN or inf")
        return self.flow.log_prob(y, self._ctx(x))

    @torch.no_grad()
    def sample(self, x, tau=1.0):
        """One y ~ p(y | x_i) per row of x at temperature tau: (B, dim)."""
        z = tau * torch.randn(x.shape[0], self.dim, dtype=x.dtype, device=x.device)
        return self.flow.inverse(z, self._ctx(x))[0]


def fit_flow_student(x, y, steps=2000, batch=256, lr=3e-3, seed=0, depth=4, **kw):
    """Train a :class:`ConditionalVectorFlow` by maximum likelihood on numpy (x, y)."""
    torch.manual_seed(seed)
    model = ConditionalVectorFlow(y.shape[1], x.shape[1], depth=depth, seed=seed, **kw)
    xt, yt = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)
    model.train()
    with torch.no_grad():  # data-dependent ActNorm initialization on a large first batch
        model.log_prob(yt[:1024], xt[:1024])
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(0, xt.shape[0], (batch,), generator=g)
        loss = -model.log_prob(yt[idx], xt[idx]).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        sched.step()
    return model.eval()


class GPStudent:
    """Gaussian-process regression (Matern 5/2 + white noise, scikit-learn) of y on x; samples
    are mean + predictive std * N(0, 1) per output."""

    def __init__(self, n_max=500, seed=0):
        self.n_max, self.seed = n_max, seed

    def fit(self, x, y):
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        k = ConstantKernel(1.0) * Matern(length_scale=1.0, nu=2.5) + WhiteKernel(0.5)
        self.gp = GaussianProcessRegressor(k, normalize_y=True, random_state=self.seed)
        self.gp.fit(x[:self.n_max], y[:self.n_max])
        return self

    def predict(self, x):
        return self.gp.predict(x)

    def sample(self, x, rng):
        mu, sd = self.gp.predict(x, return_std=True)
        return mu + sd * rng.standard_normal(mu.shape)


class DropoutStudent:
    """MLP with dropout kept on at prediction time (MC dropout); a sample is one dropout
    forward pass plus Gaussian noise with the training residual variance per output."""

    def __init__(self, hidden=64, p=0.1, steps=2000, lr=2e-3, seed=0):
        self.hidden, self.p, self.steps, self.lr, self.seed = hidden, p, steps, lr, seed

    def fit(self, x, y):
        torch.manual_seed(self.seed)
        d_in, d_out = x.shape[1], y.shape[1]
        self.net = nn.Sequential(nn.Linear(d_in, self.hidden), nn.ReLU(), nn.Dropout(self.p),
                                 nn.Linear(self.hidden, self.hidden), nn.ReLU(), nn.Dropout(self.p),
                                 nn.Linear(self.hidden, d_out))
        xt, yt = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)
        opt = torch.optim.Adam(self.net.parameters(), lr=self.lr)
        g = torch.Generator().manual_seed(self.seed)
        for _ in range(self.steps):
            idx = torch.randint(0, xt.shape[0], (256,), generator=g)
            loss = ((self.net(xt[idx]) - yt[idx]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            self.net.eval()
            self.resid_sd = (self.net(xt) - yt).std(0).numpy()
        return self

    @torch.no_grad()
    def predict(self, x, n_mc=50):
        self.net.train()  # dropout on
        xt = torch.as_tensor(x, dtype=torch.float32)
        return torch.stack([self.net(xt) for _ in range(n_mc)]).mean(0).numpy()

    @torch.no_grad()
    def sample(self, x, rng):
        self.net.train()
        mu = self.net(torch.as_tensor(x, dtype=torch.float32)).numpy()
        return mu + self.resid_sd * rng.standard_normal(mu.shape)


def run_case(name, seed=0, n_train=5000, n_test=1000, steps=2000, gp_points=500):
    """One teacher, one seed: RMSE and EMD of every student, log-likelihood correlations."""
    teacher = make_teacher(name)
    rng = np.random.default_rng(seed)
    y_tr = teacher.sample(n_train, rng)
    y_te = teacher.sample(n_test, rng)
    x_tr, x_te = teacher.pi(y_tr), teacher.pi(y_te)
    rows, t0 = {}, time.process_time()
    flow = fit_flow_student(x_tr, y_tr, steps=steps, seed=seed)
    xt = torch.as_tensor(x_te, dtype=torch.float32)
    torch.manual_seed(seed + 1)
    for tau in (0.0, 0.8, 1.0):
        s = flow.sample(xt, tau).numpy()
        rows[f"PSR flow tau={tau}"] = {"rmse": rmse(s, y_te), "emd": emd(s, y_te)}
    # figure 25: student vs exact teacher conditional log-likelihoods
    with torch.no_grad():
        ls_t = flow.log_prob(torch.as_tensor(y_te, dtype=torch.float32), xt).numpy()
        y_s = flow.sample(xt, 1.0)
        ls_s = flow.log_prob(y_s, xt).numpy()
    lt_t = teacher.log_prob_conditional(y_te, x_te)
    y_s = y_s.numpy()
    same_bin = (teacher.pi(y_s) == x_te).ravel()  # the teacher's p(y | x) is 0 off the bin
    lt_s = teacher.log_prob(y_s[same_bin]) - teacher.log_prob_x(x_te[same_bin])
    corr = {"teacher_samples": float(np.corrcoef(ls_t, lt_t)[0, 1]),
            "student_samples": float(np.corrcoef(ls_s[same_bin], lt_s)[0, 1]),
            "student_samples_in_bin": float(same_bin.mean()),
            "student_nll": float(-ls_t.mean()), "teacher_nll": float(-lt_t.mean())}
    flow_cpu = time.process_time() - t0
    gp = GPStudent(gp_points, seed).fit(x_tr, y_tr)
    rows["GP"] = {"rmse": rmse(gp.predict(x_te), y_te), "emd": emd(gp.sample(x_te, rng), y_te)}
    do = DropoutStudent(steps=steps, seed=seed).fit(x_tr, y_tr)
    rows["MC dropout"] = {"rmse": rmse(do.predict(x_te), y_te), "emd": emd(do.sample(x_te, rng), y_te)}
    return {"case": name, "seed": seed, "rows": rows, "loglik_corr": corr, "flow_cpu_s": flow_cpu,
            "cpu_s": time.process_time() - t0}


def run_all(cases=TEACHERS, seeds=(0,), **kw):
    """:func:`run_case` for every case and seed; returns (results, summary) with summary
    [case][model][metric] = (mean, std over seeds)."""
    results = [run_case(c, s, **kw) for c in cases for s in seeds]
    summary = {}
    for c in cases:
        rs = [r for r in results if r["case"] == c]
        summary[c] = {}
        for m in rs[0]["rows"]:
            summary[c][m] = {k: (float(np.mean([r["rows"][m][k] for r in rs])),
                                 float(np.std([r["rows"][m][k] for r in rs]))) for k in ("rmse", "emd")}
        summary[c]["loglik_corr"] = {k: float(np.mean([r["loglik_corr"][k] for r in rs]))
                                     for k in rs[0]["loglik_corr"]}
    return results, summary


def format_table(summary):
    """Markdown table: rows models, columns RMSE / EMD per case (mean +- std over seeds)."""
    cases = list(summary)
    models = [m for m in summary[cases[0]] if m != "loglik_corr"]
    head = "| model | " + " | ".join(f"{c} RMSE | {c} EMD" for c in cases) + " |"
    lines = [head, "|" + "---|" * (1 + 2 * len(cases))]
    for m in models:
        cells = []
        for c in cases:
            for k in ("rmse", "emd"):
                mu, sd = summary[c][m][k]
                cells.append(f"{mu:.2f} ± {sd:.2f}")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


__all__ = ["ConditionalVectorFlow", "DropoutStudent", "GPStudent", "emd", "fit_flow_student", "format_table",
           "rmse", "run_all", "run_case"]
