"""The DAPPER estimator: the dynamic author-persona topic model trained by CVI.

See ``docs``: dapper-model.md (fastprob's specification, with the thesis' errata fixed).
"""
from __future__ import annotations

import inspect
import math
import os
import time
import warnings

import numpy as np

from .. import _config, _dispatch
from ..profiling import NULL_TIMER, make_timer
from ..corpus import Corpus, ShardSet
from . import dapper_dist, dapper_io, mstep
from .align import align
from .dapper_io import MODEL_FORMAT, MODEL_VERSION  # noqa: F401  (their home before the split)


class DAPPER:
    """Dynamic Author-Persona topic model with conjugate-computation variational inference.

    Parameters
    ----------
    n_topics, n_personas : int
        K topics and P personas.
    regularization : float
        RVI strength rho in [0, 1): pushes persona trajectories apart (thesis: 0.1-0.3).
        Default 0: with rho > 0 the penalized objective is unbounded above on real corpora
        (README, "Why the ELBO collapsed"); full-batch fits then stop by the ELBO without
        the penalty and keep the best epoch's globals.
    process_noise : float
        Brownian-motion variance of persona trajectories per unit of time.
    doc_noise : float
        Variance sigma_d^2 of a document's topic vector around its persona's trajectory.
        Default 2 (the spec's 1 is too tight a prior: documents cannot concentrate on a few
        of K topics; held-out PWLL +0.03-0.04 nats/token on glibc and the Debian changelogs
        at K = 25 and 50, even on SOTU - README, "A looser document prior").
    batch_size : int or None
        None: full-batch coordinate ascent.  int: stochastic mini-batches (DAPPER mode).
    max_epochs : int
        Passes over the corpus.
    tol : float
        Stop when the relative change of the ELBO between epochs falls below this.
    local_tol, max_local_iters : float, int
        Per-document convergence: mean |change of m| below local_tol, or the cap.
    step_size : float
        CVI step r of the local update (0 < r <= 1).
    local_solver : "newton" (default), "cvi" or "squarem"
        "newton": block coordinate ascent on L_d - phi, zeta and tau exactly, then exact
        Newton steps on the concave (m, v) problem with a line search - so L_d never
        decreases; with warm starts (full batch) the ELBO is monotone.  "cvi" is the damped
        CVI update of the specification; "squarem" the same (undamped) CVI map with
        SQUAREM extrapolation.  Neither of the two is monotone: on long documents the CVI
        step barely moves along the softmax-invariant direction and SQUAREM extrapolates
        along it (see the README, "Why the ELBO collapsed").
    learning_offset, learning_decay : float
        Mini-batch learning rate r_i = (offset + i) ** -decay (decay in (0.5, 1]).
    eta, omega : float or None
        Dirichlet priors of topics (default 1/K) and of author personas (default 1/P).
    mu0, sigma0 : float
        Prior mean and variance of the first persona state.
    time_budget : float or None
        Stop after this many seconds of training.
    n_jobs : int or None
        Threads of the compiled E-step (default: FASTPROB_NUM_THREADS or all cores).
    backend : None, "numba", "numpy", "dask" or "ray"
        E-step implementation (None: the fastest available in this process).  "dask" and
        "ray" map the Numba E-step over the shards of a :class:`ShardSet` on a cluster
        (``address``; when None, Dask uses this process' shared local cluster of
        ``n_workers`` workers, started by the first fit and reused by later ones - see
        :func:`fastprob.distributed.shutdown_local_cluster`) and keep the M-step here; see
        :mod:`fastprob.distributed` and :mod:`fastprob.topics.dapper_dist`.
    address, n_workers, threads_per_worker :
        Cluster of the distributed backends.
    warm_start : bool
        Full batch in one process: start each document's local solve from its previous
        epoch's solution (costs 2K + P floats per document; makes the ELBO monotone and the
        later epochs ~5x cheaper).  Dask fits do the same on the workers
        (``distributed_warm_start``); Ray fits start cold.
    distributed_warm_start : bool
        Full batch on Dask (with ``warm_start``): keep each shard's local solutions on the
        worker that owns the shard between epochs, so the workers run the same warm-started,
        capped local solves as a single-process fit (same results up to summation order, and
        the ~5x cheaper later epochs).  Costs 2K + P floats per document on the workers.  A
        shard that moves to another worker (after a worker loss) and the first epoch after a
        resume start cold.  On by default since it makes the end-to-end fit scale (10 epochs on
        4M tokens, 2 workers: 1.43x one process; cold, each epoch repeats the expensive first
        solves); False gives the cold fit of earlier versions.  Ray always starts cold.
    fit_doc_noise : bool
        Full batch with warm starts and rho = 0: update sigma_d^2 (``doc_noise_``, starting from
        ``doc_noise``) by empirical Bayes in every M-step - its exact coordinate-ascent step,
        so the ELBO stays monotone.  Off by default: it maximizes the bound, not held-out
        likelihood - on the Debian changelogs it gave about +0.03 nats/token of PWLL, on
        SOTU -0.11 (the main job: -7.481 against -7.368 after 30 epochs).
    fit_eta : bool
        Full batch: update the symmetric topic prior eta (``eta_``, starting from ``eta``) by
        empirical Bayes in every M-step, alternating its exact maximizer with the topic
        update (coordinate ascent, so the ELBO stays monotone).  Off by default; mini-batch
        fits keep eta fixed.
    local_iters_warmup : int or None
        With warm starts, epoch e runs at most ``local_iters_warmup * e`` local iterations
        (never more than ``max_local_iters``): the local solves continue across epochs, so
        early epochs need not converge them against topics that are still random (partial
        E-steps keep the ELBO monotone).  The default 1 (one local Newton step in the first
        epoch, two in the second, ...) locks fewer documents onto the seeded topics that
        happen to cover common words in the first epoch (Debian changelogs, K = 50: one broad
        topic took 58% of the tokens after the first epoch with 3, 38% with 1; held-out PWLL
        after 30 CPU-s -6.882 with 3, -6.837 with 1; better or equal on every real corpus
        measured, see the README).  None: always ``max_local_iters``.
    early_stopping : bool
        Full batch in one process: set aside ``validation_fraction`` of each author's
        documents (``Corpus.split``, seeded by ``random_state``), score them by document
        completion after every epoch (``history_[i]["val_pwll"]``; the time counts as
        training time), and once ``n_iter_no_change`` epochs pass without a better score,
        restore the best epoch's globals (``best_epoch_``) and stop (``stop_reason_ =
        "early_stopping"``).  A fit that ends otherwise (max_epochs, tol, time budget) also
        returns its best epoch's globals; ``fit(resume=True)`` continues from the latest.
        Off by default: measured without ``persona_shrinkage``, where the held-out curve
        peaked and then declined (the Debian changelogs) it kept the peak, +0.015-0.023
        nats/token at 30 CPU-s; on glibc at K = 50, still improving at 30 CPU-s, the
        held-out documents and the scoring time cost 0.034; the shrinkage default removes
        most of the decline it was built for (README, issue 10).
    validation_fraction : float
        Share of each author's documents held out for ``early_stopping`` (default 0.1).
    n_iter_no_change : int
        Epochs without a better validation score before ``early_stopping`` stops (default 3).
    persona_shrinkage : float
        kappa >= 0: a Gaussian pull of every persona's mean trajectory towards the personas'
        mean trajectory abar_t, as strong as kappa documents per (step, persona) at abar_t
        (the objective gains -kappa / (2 sigma_d^2) sum_{t,p} E||alpha_pt - abar_t||^2, with
        abar fitted; still a lower bound on log p(w), still monotone).  Without it, the means
        of topics a persona hardly uses drift down epoch after epoch and held-out likelihood
        declines after its peak (README, issue 10).  20 gains 0.014-0.020 nats/token of
        held-out PWLL on every real corpus measured, but the personas' trajectories become
        alike (SOTU: mean cosine of centred trajectories 0.43 -> 0.997, the personas' top
        topics the same), so the default is 0, the spec's model.  Not with
        ``regularization`` > 0 or ``fit_doc_noise``.
    random_state : int or None
    progress : bool
        Show a progress bar.
    profile : bool
        Time each phase of every epoch (E-step, M-step, alpha-step, ELBO, data loading,
        held-out evaluation, checkpoint I/O; for dask/ray also payload, broadcast, gather
        and reduce) into ``history_[i]["phases"]`` and ``history_[i]["epoch_wall"]``
        (seconds; see :mod:`fastprob.profiling`).  Off: no timing calls are made.

    Attributes (after fit)
    ----------------------
    lambda_ : (K, V) variational Dirichlet parameters of the topics
    topic_word_ : (K, V) expected topic-word distributions
    delta_ : (A, P) variational Dirichlet parameters of the authors
    author_persona_ : (A, P) expected author-persona distributions
    persona_trajectories_ : (T, P, K) posterior means of the persona states alpha
    persona_trajectory_var_ : (T, P) their posterior variances (shared by all K coordinates)
    history_ : list of dicts, one per epoch (elbo, held-out pwll, seconds, ...)
    """

    _timer = NULL_TIMER  # replaced by a PhaseTimer during fit(profile=True)

    def __init__(self, n_topics: int = 25, n_personas: int = 15, regularization: float = 0.0,
                 process_noise: float = 0.2, doc_noise: float = 2.0, batch_size: int | None = None,
                 max_epochs: int = 50, tol: float = 1e-4, local_tol: float = 1e-3,
                 max_local_iters: int = 50, step_size: float = 0.7, learning_offset: float = 10.0,
                 learning_decay: float = 0.7, eta: float | None = None, omega: float | None = None,
                 mu0: float = 0.0, sigma0: float = 1.0, time_budget: float | None = None,
                 n_jobs: int | None = None, backend: str | None = None, random_state=None,
                 progress: bool = True, init_docs: int | None = None, local_solver: str = "newton",
                 address: str | None = None, n_workers: int = 2, threads_per_worker: int = 1,
                 warm_start: bool = True, local_iters_warmup: int | None = 1,
                 fit_doc_noise: bool = False, fit_eta: bool = False, profile: bool = False,
                 distributed_warm_start: bool = True, early_stopping: bool = False,
                 validation_fraction: float = 0.1, n_iter_no_change: int = 3,
                 persona_shrinkage: float = 0.0):
        self.n_topics = n_topics
        self.n_personas = n_personas
        self.regularization = regularization
        self.process_noise = process_noise
        self.doc_noise = doc_noise
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.tol = tol
        self.local_tol = local_tol
        self.max_local_iters = max_local_iters
        self.step_size = step_size
        self.learning_offset = learning_offset
        self.learning_decay = learning_decay
        self.eta = eta
        self.omega = omega
        self.mu0 = mu0
        self.sigma0 = sigma0
        self.time_budget = time_budget
        self.n_jobs = n_jobs
        self.backend = backend
        self.random_state = random_state
        self.progress = progress
        self.init_docs = init_docs
        self.local_solver = local_solver
        self.address = address
        self.n_workers = n_workers
        self.threads_per_worker = threads_per_worker
        self.warm_start = warm_start
        self.local_iters_warmup = local_iters_warmup
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.persona_shrinkage = persona_shrinkage
        self.fit_doc_noise = fit_doc_noise
        self.fit_eta = fit_eta
        self.profile = profile
        self.distributed_warm_start = distributed_warm_start
        self._validate_params()

    # ------------------------------------------------------------------ validation
    def _validate_params(self):
        def need(cond, msg):
            if not cond:
                raise ValueError(msg)

        need(isinstance(self.n_topics, (int, np.integer)) and self.n_topics >= 1,
             f"n_topics must be an integer >= 1, got {self.n_topics!r}")
        need(isinstance(self.n_personas, (int, np.integer)) and self.n_personas >= 1,
             f"n_personas must be an integer >= 1, got {self.n_personas!r}")
        need(0.0 <= self.regularization < 1.0,
             f"regularization must satisfy 0 <= rho < 1, got {self.regularization} "
             "(rho >= 1 makes the persona problem indefinite; the thesis found 0.1-0.3 best)")
        for name in ("process_noise", "doc_noise", "sigma0", "local_tol"):
            v = getattr(self, name)
            need(v > 0 and math.isfinite(v), f"{name} must be a positive number, got {v}")
        need(self.tol >= 0, f"tol must be >= 0, got {self.tol}")
        need(0 < self.step_size <= 1, f"step_size must be in (0, 1], got {self.step_size}")
        need(self.batch_size is None or (int(self.batch_size) >= 1),
             f"batch_size must be None (full batch) or >= 1, got {self.batch_size}")
        need(int(self.max_epochs) >= 1 and int(self.max_local_iters) >= 1,
             "max_epochs and max_local_iters must be >= 1")
        need(self.init_docs is None or int(self.init_docs) >= 0,
             f"init_docs must be None (automatic) or >= 0, got {self.init_docs!r}")
        need(self.local_iters_warmup is None or int(self.local_iters_warmup) >= 1,
             f"local_iters_warmup must be None or >= 1, got {self.local_iters_warmup!r}")
        need(0.5 < self.learning_decay <= 1.0,
             f"learning_decay must be in (0.5, 1] for convergence, got {self.learning_decay}")
        need(self.learning_offset >= 0, "learning_offset must be >= 0")
        for name in ("eta", "omega"):
            v = getattr(self, name)
            need(v is None or v > 0, f"{name} must be positive, got {v}")
        need(self.backend in (None, "numba", "numpy", "dask", "ray"),
             "backend must be None, 'numba', 'numpy' (in process) or 'dask', 'ray' (distributed)")
        need(isinstance(self.early_stopping, (bool, np.bool_)),
             f"early_stopping must be True or False, got {self.early_stopping!r}")
        need(0.0 < self.validation_fraction < 1.0,
             f"validation_fraction must be in (0, 1), got {self.validation_fraction!r}")
        need(isinstance(self.n_iter_no_change, (int, np.integer)) and self.n_iter_no_change >= 1,
             f"n_iter_no_change must be an integer >= 1, got {self.n_iter_no_change!r}")
        k = self.persona_shrinkage
        need(isinstance(k, (int, float, np.integer, np.floating)) and math.isfinite(k) and k >= 0,
             f"persona_shrinkage must be a number >= 0 (pseudo-documents), got {k!r}")
        need(k == 0 or self.regularization == 0,
             "persona_shrinkage pulls personas together and regularization > 0 pushes them apart: "
             "use one of them")
        need(k == 0 or not self.fit_doc_noise,
             "persona_shrinkage with fit_doc_noise is not supported: set fit_doc_noise=False")
        need(self.local_solver in ("newton", "cvi", "squarem"),
             f"local_solver must be 'newton', 'cvi' or 'squarem', got {self.local_solver!r}")

    @property
    def _s2(self):
        """The document noise variance in use: fitted by empirical Bayes, else the parameter."""
        return getattr(self, "doc_noise_", None) or self.doc_noise

    @property
    def eta_(self):
        """The topic prior in use: fitted by empirical Bayes (``fit_eta``), else the parameter."""
        fitted = getattr(self, "eta_fitted_", None)
        if fitted is not None:
            return fitted
        return self.eta if self.eta is not None else 1.0 / self.n_topics

    @property
    def omega_(self):
        return self.omega if self.omega is not None else 1.0 / self.n_personas

    # ------------------------------------------------------------------ fitted views
    @property
    def topic_word_(self):
        return self.lambda_ / self.lambda_.sum(axis=1, keepdims=True)

    @property
    def author_persona_(self):
        return self.delta_ / self.delta_.sum(axis=1, keepdims=True)

    @property
    def persona_trajectories_(self):
        return self.alpha_

    @property
    def persona_trajectory_var_(self):
        return self.alpha_var_

    @property
    def components_(self):  # scikit-learn's name for topic-word parameters
        return self.lambda_

    def _check_fitted(self):
        if not hasattr(self, "lambda_"):
            raise RuntimeError("this DAPPER model is not fitted yet: call fit() or DAPPER.load()")

    # ------------------------------------------------------------------ pieces
    @property
    def distributed(self):
        return self.backend in ("dask", "ray")

    def _estep_fn(self):
        return _dispatch.resolve("dapper_estep", None if self.distributed else self.backend)

    def _payload(self):
        """The globals and settings a worker needs (see :func:`dapper_dist.payload`)."""
        return dapper_dist.payload(self)

    def _threads(self):
        return self.n_jobs or _config.config.num_threads

    def _elogk(self):
        return mstep.expect_log_dirichlet(self.delta_)

    def _ebT(self):
        return np.ascontiguousarray(np.exp(mstep.expect_log_dirichlet(self.lambda_)).T)

    def _run_estep(self, corpus, collect=True, keep_locals=False, warn=True, warm=None, max_iters=None):
        """E-step over ``corpus``.  ``warm``: (m, v, tau) arrays of one row per document that
        hold the previous local solution; the E-step starts from them and overwrites them."""
        al = align(self, corpus, warn=warn)
        D, K, P = corpus.n_docs, self.n_topics, self.n_personas
        if warm is not None:
            m, v, tau = warm
        else:
            m = np.empty((D if keep_locals else 0, K))
            v = np.empty_like(m)
            tau = np.empty((D if keep_locals else 0, P))
        out = self._estep_fn()(al.indptr, al.indices, al.counts, al.authors, al.times, self._ebT(),
                               al.elogk, al.alpha, al.alpha_sq, self._s2, self.local_tol,
                               max_iters or self.max_local_iters, self.step_size, m, v, tau, collect_beta=collect,
                               n_threads=self._threads(), solver=self.local_solver,
                               warm_start=warm is not None)
        S_betaT, S_kappa, n_tp, M, elbo, iters = out
        A, T = self.delta_.shape[0], self.alpha_.shape[0]
        stats = dict(S_beta=S_betaT.T, S_kappa=S_kappa[:A], n_tp=n_tp[:T], M=M[:T], elbo=elbo,
                     iters=iters)
        return stats, (m, v, tau), al

    def _global_elbo(self):
        """Global terms of the objective at the current globals (beta, kappa, alpha, penalty)."""
        g = mstep.dirichlet_elbo(self.lambda_, self.eta_) + mstep.dirichlet_elbo(self.delta_, self.omega_)
        g += mstep.alpha_elbo(self.alpha_, self.alpha_var_, self._alpha_cov_off, self._alpha_logdet,
                              self.time_values_, self.process_noise, self.sigma0, self.mu0)
        if self.regularization > 0:
            g -= self.regularization * mstep.penalty(self.alpha_, self.n_stat_, self._s2)
        return g + self._shrinkage_term()

    _SHRINK_SWEEPS = 3

    def _alpha_update(self):
        """The exact alpha-step.  With ``persona_shrinkage`` kappa > 0 the objective has the
        term -kappa / (2 s2) sum_{t,p} E||alpha_pt - abar_t||^2, abar_t the personas' mean
        trajectory: alternate abar's exact maximizer (the mean over personas) with the
        alpha-step given abar, which is the plain alpha-step with kappa pseudo-documents at
        abar_t per (step, persona).  Both are coordinate-ascent steps: the ELBO stays monotone."""
        kappa = float(self.persona_shrinkage)
        n, M = self.n_stat_, self.M_stat_
        for _ in range(self._SHRINK_SWEEPS if kappa > 0 else 1):
            if kappa > 0:
                abar = self.alpha_.mean(axis=1, keepdims=True)
                n, M = self.n_stat_ + kappa, self.M_stat_ + kappa * abar
            a, var, info = mstep.alpha_step(n, M, self.time_values_, self.process_noise,
                                            self._s2, self.mu0, self.sigma0, self.regularization)
            self.alpha_, self.alpha_var_ = a, var
            self._alpha_cov_off, self._alpha_logdet = info["cov_off"], info["logdet_post"]
            self.last_alpha_residual_ = info["residual"]
        return info

    def _shrinkage_term(self):
        """-kappa / (2 s2) sum_{t,p} (||alpha_pt - abar_t||^2 + K var_pt), abar at its maximizer."""
        kappa = float(self.persona_shrinkage)
        if kappa == 0:
            return 0.0
        a = self.alpha_
        dev = a - a.mean(axis=1, keepdims=True)
        return -kappa / (2.0 * self._s2) * (float(np.sum(dev * dev)) + a.shape[2] * float(np.sum(self.alpha_var_)))

    # ------------------------------------------------------------------ init
    def _n_init_docs(self, corpus, V):
        """Documents that seed each topic: ``init_docs``, or by default enough that their
        tokens make ~4% of the Gamma(100, 0.01) base mass V (at least 3, at most 20).
        Measured: on the Debian changelogs (V = 26,760, 51 tokens per document) 20 seeds
        instead of 3 raise held-out PWLL by ~0.05; on a small-vocabulary sampled corpus
        (V = 200, 80 tokens per document) 20 seeds average the topics together and one
        true topic is lost, 3 recover all of them."""
        if self.init_docs is not None:
            return int(self.init_docs)
        ntok, ndoc = getattr(corpus, "n_tokens", None), getattr(corpus, "n_docs", None)
        if not ntok or not ndoc:
            return 3
        return int(np.clip(round(0.04 * V / (ntok / ndoc)), 3, 20))

    def _init_globals(self, corpus_like, first_docs, n_docs_t, rng):
        K, P = self.n_topics, self.n_personas
        self.doc_noise_ = None  # a previous fit's empirical-Bayes values must not leak in
        self.eta_fitted_ = None
        V, A, T = len(corpus_like.vocab), len(corpus_like.author_names), len(corpus_like.time_values)
        lam = rng.gamma(100.0, 0.01, size=(K, V))
        # seed each topic with the counts of a few random documents (section 3.5); documents
        # are drawn by global index so a ShardSet and the same corpus in memory agree
        get_doc, n_docs = _doc_reader(first_docs)
        for k in range(K):
            for d in rng.integers(0, n_docs, size=min(self._n_init_docs(corpus_like, V), n_docs)):
                ids, cnts = get_doc(int(d))
                lam[k, ids] += cnts
        self.lambda_ = lam
        self.delta_ = self.omega_ + rng.random((A, P))
        self.time_values_ = np.asarray(corpus_like.time_values, dtype=np.float64)
        self.alpha_ = rng.normal(0.0, 0.1, size=(T, P, K))
        self.n_stat_ = np.zeros((T, P))
        self.M_stat_ = np.zeros((T, P, K))
        pv = mstep.alpha_prior_var(self.time_values_, self.process_noise, self.sigma0)
        self.alpha_var_ = np.repeat(pv[:, None], P, axis=1)
        _, _, info = mstep.alpha_step(self.n_stat_, self.M_stat_, self.time_values_, self.process_noise,
                                      self._s2, self.mu0, self.sigma0, 0.0)
        self._alpha_cov_off, self._alpha_logdet = info["cov_off"], info["logdet_post"]
        self.vocab_ = list(corpus_like.vocab)
        self.author_names_ = list(corpus_like.author_names)
        man = getattr(corpus_like, "manifest", None)
        # how time steps map back to timestamps (reports label the axis in years)
        self.time_info_ = {"mode": man["time_mode"] if man else corpus_like.time_mode,
                           "width": man["time_width"] if man else corpus_like.time_width,
                           "origin": getattr(corpus_like, "time_origin", None)}
        self.n_docs_t_ = np.asarray(n_docs_t, dtype=np.float64)
        self.n_docs_total_ = float(self.n_docs_t_.sum())
        self.epoch_ = 0
        self.n_updates_ = 0
        self.history_ = []
        self._warm_ = None
        self._guard_best_ = None
        self._es_best_ = None
        self._es_latest_ = None

    # ------------------------------------------------------------------ fitting
    def fit(self, corpus, test: Corpus | None = None, resume: bool = False, checkpoint=None):
        """Fit on a :class:`Corpus` (full batch or mini-batches) or a :class:`ShardSet` (streamed).

        Parameters
        ----------
        corpus : Corpus or ShardSet
        test : Corpus, optional
            Held-out documents; their PWLL (document completion) is reported every epoch.
        resume : bool
            Continue from ``checkpoint`` if it exists (same settings, same corpus); without a
            checkpoint, continue this already fitted model in memory (raise ``max_epochs``).
        checkpoint : path, optional
            Model file written atomically after every epoch.
        """
        self._validate_params()
        streamed = isinstance(corpus, ShardSet)
        if streamed and self.batch_size is None and not self.distributed:
            raise ValueError("a ShardSet is streamed in mini-batches: set batch_size (or use a "
                             "distributed backend for full-batch training on shards)")
        if not streamed and not isinstance(corpus, Corpus):
            raise TypeError(f"fit expects a fastprob Corpus or ShardSet, got {type(corpus).__name__}")
        if len(corpus) == 0:
            raise ValueError("cannot fit DAPPER on an empty corpus (0 documents); check the corpus "
                             "builder's report for what was dropped")
        if len(corpus.vocab) == 0:
            raise ValueError("cannot fit DAPPER: the corpus vocabulary is empty")
        corpus, val = self._validation_split(corpus, streamed)
        rng = np.random.default_rng(self.random_state)
        self._timer = make_timer(self.profile)
        if resume and checkpoint is not None and os.path.exists(checkpoint):
            self._load_state(checkpoint)
            self._es_latest_ = None  # the checkpoint holds the latest epoch's state
            if self.vocab_ != list(corpus.vocab) or self.author_names_ != list(corpus.author_names):
                raise ValueError(f"checkpoint {checkpoint} was trained on a different corpus")
            rng = np.random.default_rng(self._rng_state_seed())
        elif resume and checkpoint is None and hasattr(self, "lambda_"):
            # continue the in-memory fit (raise max_epochs first), warm starts included
            if self.vocab_ != list(corpus.vocab) or self.author_names_ != list(corpus.author_names):
                raise ValueError("resume=True continues a fit on the same corpus; this one differs")
            self._swap_in_latest()
            rng = np.random.default_rng(self._rng_state_seed())
        else:
            if streamed:
                n_t = np.zeros(len(corpus.time_values), dtype=np.int64)
                for c in corpus.iter_shards():
                    n_t += np.bincount(c.times, minlength=n_t.shape[0])
            else:
                n_t = np.bincount(corpus.times, minlength=len(corpus.time_values))
            self._init_globals(corpus, corpus, n_t, rng)
        if checkpoint is not None:
            dapper_io.remove_stale_temporaries(checkpoint)
        self._executor = None
        if self.distributed:
            if not streamed:
                raise ValueError(f"backend={self.backend!r} runs on corpus shards: save the corpus "
                                 "(Corpus.save) and pass ShardSet(path)")
            self._executor = dapper_dist.start_executor(self)
        fit_tokens = self._count_tokens(corpus)  # a count, not a reference to the corpus
        t_start = time.perf_counter()
        spent0 = sum(h["seconds"] for h in self.history_)
        bar = None
        if self.progress and _config.config.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.max_epochs, initial=self.epoch_, desc="DAPPER", unit="epoch")
        try:
            while self.epoch_ < self.max_epochs:
                self._timer.start_epoch()
                t0 = time.perf_counter()
                c0 = time.process_time()
                if self.batch_size is None:
                    elbo, iters = self._full_batch_epoch(corpus)
                else:
                    elbo, iters = self._minibatch_epoch(corpus, rng, bar)
                self.epoch_ += 1
                with self._timer.phase("bookkeeping"):
                    ntok = max(fit_tokens, 1)
                    rec = {"epoch": self.epoch_, "elbo": elbo, "elbo_per_word": elbo / ntok,
                           "mean_local_iters": iters, "seconds": time.perf_counter() - t0,
                           "cpu_seconds": time.process_time() - c0}
                    if self.regularization > 0:
                        # the bound on log p(w) itself: the objective without the RVI penalty term
                        rec["elbo_unpenalized"] = elbo + self._last_penalty
                        rec["elbo_unpenalized_per_word"] = rec["elbo_unpenalized"] / ntok
                if val is not None:
                    # part of training: its time counts in the epoch's seconds
                    t1, c1 = time.perf_counter(), time.process_time()
                    with self._timer.phase("validation"):
                        rec["val_pwll"] = self.score(val)
                    rec["seconds"] += time.perf_counter() - t1
                    rec["cpu_seconds"] += time.process_time() - c1
                if test is not None and test.n_docs:
                    with self._timer.phase("eval"):
                        rec["test_pwll"] = self.score(test)
                self.history_.append(rec)
                stop_early = val is not None and self._early_stop(rec["val_pwll"])
                # re-seed every epoch from a stored seed, so a resumed fit draws the same batches
                self._rng_seed_for_resume = int(rng.integers(2**62))
                rng = np.random.default_rng(self._rng_seed_for_resume)
                if checkpoint is not None:
                    with self._timer.phase("checkpoint"):
                        self.save(checkpoint, _with_locals=True)
                if bar is not None:
                    post = {"elbo/w": f"{rec['elbo_per_word']:.4f}"}
                    if "test_pwll" in rec:
                        post["test_pwll"] = f"{rec['test_pwll']:.4f}"
                    bar.set_postfix(post)
                    bar.update(1)
                if self._timer.enabled:
                    rec.update(self._timer.end_epoch())
                if stop_early or self._penalty_guard():
                    break
                if len(self.history_) >= 2:
                    key = "elbo_unpenalized" if self.regularization > 0 else "elbo"
                    prev, cur = self.history_[-2][key], self.history_[-1][key]
                    if abs(cur - prev) <= self.tol * abs(prev):
                        self.stop_reason_ = "converged"
                        break
                if self.time_budget is not None and spent0 + time.perf_counter() - t_start > self.time_budget:
                    self.stop_reason_ = "time_budget"
                    break
            else:
                self.stop_reason_ = "max_epochs"
        finally:
            self._timer.close()  # unhooks the gc callback if an epoch was interrupted
            if bar is not None:
                bar.close()
            if self._executor is not None:
                self._executor.close()
                self._executor = None
        if val is not None and self.stop_reason_ != "early_stopping":
            self._keep_best_at_end()
        if self._timer.enabled:
            from ..profiling import format_table

            print(format_table(self._timer.records, "DAPPER time per phase"))
        self._timer = NULL_TIMER
        return self

    @staticmethod
    def _count_tokens(corpus):
        return int(corpus.n_tokens if isinstance(corpus, Corpus) else sum(c.n_tokens for c in corpus.iter_shards()))

    def _validation_split(self, corpus, streamed):
        """(training corpus, validation corpus or None): with ``early_stopping``, a seeded
        ``validation_fraction`` of each author's documents is set aside (Corpus.split)."""
        if not self.early_stopping:
            return corpus, None
        if streamed or self.batch_size is not None or self.distributed:
            raise ValueError("early_stopping needs a full-batch fit on an in-memory Corpus (no "
                             "batch_size, no ShardSet, no distributed backend); on shards, pass a "
                             "held-out corpus as fit(test=...) and watch history_[i]['test_pwll']")
        seed = self.random_state if isinstance(self.random_state, (int, np.integer)) else 0
        train, val = corpus.split(self.validation_fraction, seed=int(seed))
        if val.n_docs == 0 or val.n_tokens < 2:
            raise ValueError(f"early_stopping: validation_fraction={self.validation_fraction} of each "
                             "author's documents leaves no validation document (authors with a single "
                             "document stay in training); raise validation_fraction or pass "
                             "early_stopping=False")
        return train, val

    def _early_stop(self, score):
        """Keep the globals of the best validation PWLL; after ``n_iter_no_change`` epochs
        without a better one, restore them and stop.

        Why: on real corpora the held-out PWLL can peak and then decline while the ELBO still
        rises (without persona_shrinkage the persona means of unused topics drift down; the
        README, issue 10) - so the last epoch is not the best model for new documents.
        """
        best = getattr(self, "_es_best_", None)
        if best is None or score > best[0]:
            keep = {k: (np.copy(v) if isinstance(v, np.ndarray) else v) for k, v in self._state().items()}
            self._es_best_ = (score, keep, self.epoch_)
            self.best_epoch_ = self.epoch_
            return False
        if self.epoch_ - best[2] < self.n_iter_no_change:
            return False
        self._restore_best(best)
        self.stop_reason_ = "early_stopping"
        return True

    def _restore_best(self, best):
        """Put the kept globals of the best validation epoch back.  The warm locals belong to a
        later epoch's globals: a fit continued from here starts cold."""
        for k, v in best[1].items():
            setattr(self, k, np.copy(v) if isinstance(v, np.ndarray) else v)
        self._warm_ = None
        self.best_epoch_ = best[2]

    def _state(self):
        st = {k: getattr(self, k) for k in self._ARRAYS}
        st["doc_noise_"] = getattr(self, "doc_noise_", None)
        st["eta_fitted_"] = getattr(self, "eta_fitted_", None)
        return st

    def _keep_best_at_end(self):
        """A fit with early stopping that ended otherwise (max_epochs, tol, time budget) also
        ends on its best validation epoch, as scikit-learn's early stopping does.  The latest
        state is kept aside, so ``fit(resume=True)`` in memory continues the training where
        it was, exactly as an uninterrupted fit (the checkpoint file holds the latest state)."""
        best = getattr(self, "_es_best_", None)
        if best is None or best[2] == self.epoch_:
            return
        latest = self._state()
        latest["_warm_"] = getattr(self, "_warm_", None)
        self._es_latest_ = latest
        self._restore_best(best)

    def _swap_in_latest(self):
        latest = getattr(self, "_es_latest_", None)
        if latest is not None:
            for k, v in latest.items():
                setattr(self, k, v)
            self._es_latest_ = None

    _GUARD_PATIENCE = 2  # epochs of decreasing unpenalized ELBO before the RVI guard stops

    def _penalty_guard(self):
        """Full batch with rho > 0: stop, and go back to the best globals, once the bound on
        log p(w) (the ELBO without the penalty) has fallen for _GUARD_PATIENCE epochs.

        Why: the RVI penalty rewards persona trajectories that point in opposite directions,
        with weights that grow with the documents, while their documents can follow them at
        no cost in likelihood wherever the softmax saturates (topics a persona never uses).
        The penalized objective is then unbounded above, and ascent on it ends up trading
        the likelihood for ever larger trajectories (see the README).
        """
        if self.regularization <= 0 or self.batch_size is not None:
            return False
        h = self.history_
        cur = h[-1]["elbo_unpenalized"]
        best = getattr(self, "_guard_best_", None)
        if best is None or cur > best[0]:
            # the globals that produced this epoch's value are the ones before its M-step
            self._guard_best_ = (cur, self._pre_mstep_state, len(h))
            return False
        if len(h) - self._guard_best_[2] >= self._GUARD_PATIENCE:
            for k, v in self._guard_best_[1].items():
                setattr(self, k, v)
            self.stop_reason_ = "unpenalized_elbo_decreasing"
            warnings.warn(f"DAPPER: the ELBO without the RVI penalty fell for {self._GUARD_PATIENCE} "
                          f"epochs after epoch {self._guard_best_[2]}; stopped and restored the globals of "
                          f"that epoch (regularization={self.regularization}; 0 is always stable)",
                          RuntimeWarning, stacklevel=3)
            return True
        return False

    def _full_batch_epoch(self, corpus):
        T = self._timer
        with T.phase("elbo"):
            g = self._global_elbo()  # objective value at (old globals, new locals): monotone
            self._last_penalty = (self.regularization * mstep.penalty(self.alpha_, self.n_stat_, self._s2)
                                  if self.regularization > 0 else 0.0)
        if self.regularization > 0:
            self._pre_mstep_state = {k: np.copy(getattr(self, k)) for k in self._ARRAYS}
            self._pre_mstep_state["doc_noise_"] = self.doc_noise_
        if self.distributed:
            stats = dapper_dist.full_batch_estep(self, corpus)
        else:
            # Warm start: each document's local solve starts from its previous solution.  The
            # M-step maximized the objective at those locals and the local solver never
            # decreases L_d, so the full-batch objective cannot decrease (dapper-model.md 6.2).
            with T.phase("estep"):
                warm = self._warm_locals(corpus) if self.warm_start else None
                cap = self.max_local_iters
                if warm is not None and self.local_iters_warmup:
                    cap = min(cap, int(self.local_iters_warmup) * (self.epoch_ + 1))
                stats, _, _ = self._run_estep(corpus, warn=False, warm=warm, max_iters=cap)
                self._warm_ = warm
        elbo = stats["elbo"] + g
        with T.phase("mstep"):
            self.lambda_ = self.eta_ + stats["S_beta"]
            if self.fit_eta:  # alternate the two exact maximizers: each raises the objective
                for _ in range(3):
                    self.eta_fitted_ = mstep.fit_symmetric_dirichlet(self.lambda_)
                    self.lambda_ = self.eta_fitted_ + stats["S_beta"]
            self.delta_ = self.omega_ + stats["S_kappa"]
            self.n_stat_, self.M_stat_ = stats["n_tp"], stats["M"]
        with T.phase("alpha"):
            self._alpha_update()
        # with rho > 0 the objective is unbounded above, and so is its sigma_d^2 direction: a
        # negative penalty drives the maximizer to 0 (measured: ELBO/word +94,091 in one epoch)
        if self.fit_doc_noise and self.regularization == 0 and getattr(self, "_warm_", None) is not None:
            with T.phase("doc_noise"):
                self._update_doc_noise(self._warm_)
        self.n_updates_ += 1
        return elbo, float(stats["iters"].mean())

    def _update_doc_noise(self, locals_, sweeps: int = 3):
        """Empirical Bayes for sigma_d^2: alternate its closed-form maximizer
        sigma_d^2 = sum_d E||theta_d - A_t x_d||^2 / (D K)
        with the alpha-step (which depends on it); each is exact coordinate ascent."""
        m, v, _ = locals_
        D, K = m.shape
        if D == 0:
            return
        own = float(np.sum(m * m) + np.sum(v))   # sum_d sum_k (m_dk^2 + v_dk)
        for _ in range(sweeps):
            a = self.alpha_
            cross = float(np.einsum("tpk,tpk->", a, self.M_stat_))
            asq = np.einsum("tpk,tpk->tp", a, a) + K * self.alpha_var_
            bracket = own - 2.0 * cross + float(np.sum(self.n_stat_ * asq))
            self.doc_noise_ = max(bracket / (D * K), 1e-6)
            self._alpha_update()

    def _warm_locals(self, corpus):
        """The (m, v, tau) warm-start arrays for a full-batch fit on ``corpus``: the previous
        epoch's solution, or m = 0, v = doc_noise on the first epoch."""
        D, K, P = corpus.n_docs, self.n_topics, self.n_personas
        w = getattr(self, "_warm_", None)
        if w is not None and w[0].shape == (D, K) and w[2].shape == (D, P):
            return w
        return np.zeros((D, K)), np.full((D, K), float(self._s2)), np.zeros((D, P))

    def partial_fit(self, batch: Corpus):
        """One stochastic update from a mini-batch (the model must be initialized by fit or
        on the first call, where the batch's vocabulary, authors and time steps are used)."""
        if not hasattr(self, "lambda_"):
            rng = np.random.default_rng(self.random_state)
            self._init_globals(batch, batch, np.bincount(batch.times, minlength=batch.n_steps), rng)
        self._svi_step(batch)
        return self

    def _svi_step(self, batch):
        with self._timer.phase("estep"):
            stats, _, _ = self._run_estep(batch, warn=False)
        T = self.alpha_.shape[0]
        with self._timer.phase("mstep"):  # the alpha-step inside is charged to "alpha"
            return self._svi_update(stats, batch.n_docs, np.bincount(batch.times, minlength=T)[:T])

    def _svi_update(self, stats, B, B_t):
        """The stochastic update of spec 3.4 from the statistics of B documents (B_t per step)."""
        r = (self.learning_offset + self.n_updates_) ** (-self.learning_decay)
        scale = self.n_docs_total_ / B
        self.lambda_ = (1 - r) * self.lambda_ + r * (self.eta_ + scale * stats["S_beta"])
        self.delta_ = (1 - r) * self.delta_ + r * (self.omega_ + scale * stats["S_kappa"])
        T = self.alpha_.shape[0]
        present = B_t > 0
        st = np.zeros(T)
        st[present] = self.n_docs_t_[present] / B_t[present]
        self.n_stat_[present] = (1 - r) * self.n_stat_[present] + r * st[present, None] * stats["n_tp"][present]
        self.M_stat_[present] = (1 - r) * self.M_stat_[present] + r * st[present, None, None] * stats["M"][present]
        with self._timer.phase("alpha"):
            self._alpha_update()
        self.n_updates_ += 1
        return stats

    def _minibatch_epoch(self, corpus, rng, bar=None):
        seed = int(rng.integers(2**62))
        total_elbo, iters, n = 0.0, 0.0, 0
        if self.distributed:
            return dapper_dist.minibatch_epoch(self, corpus, seed)
        batches = self._timer.iterate("data", corpus.iter_batches(int(self.batch_size), shuffle=True, seed=seed))
        for b in batches:
            stats = self._svi_step(b)
            total_elbo += stats["elbo"]
            iters += float(stats["iters"].sum())
            n += b.n_docs
        # a running estimate: local terms under the globals of the moment + final global terms
        with self._timer.phase("elbo"):
            self._last_penalty = (self.regularization * mstep.penalty(self.alpha_, self.n_stat_, self._s2)
                                  if self.regularization > 0 else 0.0)
            return total_elbo + self._global_elbo(), iters / max(n, 1)

    # ------------------------------------------------------------------ inference
    def transform(self, corpus):
        """Persona and topic proportions of documents.

        Returns
        -------
        personas : (D, P) q(x_d) = tau_d;  topics : (D, K) softmax of the posterior mean of theta_d
        """
        self._check_fitted()
        _, (m, v, tau), _ = self._run_estep(corpus, collect=False, keep_locals=True)
        z = np.exp(m - m.max(axis=1, keepdims=True)) if m.size else m
        return tau, z / z.sum(axis=1, keepdims=True) if m.size else z

    def elbo(self, corpus, per_word: bool = True):
        """Sum of the per-document bounds L_d with the globals fixed (per word by default).

        Per word it lower-bounds log p(w_d | globals) / N_d averaged over the corpus' tokens.
        """
        self._check_fitted()
        stats, _, _ = self._run_estep(corpus, collect=False)
        return stats["elbo"] / max(corpus.n_tokens, 1) if per_word else stats["elbo"]

    def score(self, corpus, seed: int = 0):
        """Held-out per-word log-likelihood by document completion (spec section 4)."""
        from .evaluate import document_completion

        self._check_fitted()
        return document_completion(self, corpus, seed=seed)["pwll"]

    # ------------------------------------------------------------------ parameters
    _ARRAYS = dapper_io.STATE_ARRAYS

    @classmethod
    def _param_names(cls):
        """The constructor's parameters, in order (scikit-learn's convention: every
        parameter is an attribute of the same name, stored unchanged)."""
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values() if p.name != "self"]

    def get_params(self, deep: bool = True):
        """The constructor parameters as a dict (scikit-learn estimator API)."""
        return {k: getattr(self, k) for k in self._param_names()}

    def set_params(self, **params):
        """Set constructor parameters (scikit-learn estimator API); returns ``self``.
        Unknown names raise, and the new values are validated as in the constructor."""
        names = self._param_names()
        unknown = sorted(set(params) - set(names))
        if unknown:
            raise ValueError(f"DAPPER has no parameter(s) {unknown}; valid parameters: {names}")
        old = {k: getattr(self, k) for k in params}
        for k, v in params.items():
            setattr(self, k, v)
        try:
            self._validate_params()
        except ValueError:
            for k, v in old.items():  # leave the model as it was
                setattr(self, k, v)
            raise
        return self

    def __repr__(self):
        defaults = {p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()}
        changed = [f"{k}={v!r}" for k, v in self.get_params().items() if not _same_value(v, defaults.get(k))]
        return f"{type(self).__name__}({', '.join(changed)})"

    # ------------------------------------------------------------------ persistence
    def save(self, path, _with_locals=False):
        """Write the model (parameters, fitted state, history) atomically to ``path`` (.npz).

        Checkpoints written during fit also hold the warm-start locals, so a resumed fit
        continues exactly as an uninterrupted one (see :mod:`fastprob.topics.dapper_io`)."""
        dapper_io.save_model(self, path, with_locals=_with_locals)

    @classmethod
    def load(cls, path):
        """Read a model written by :meth:`save`; rejects corrupt or non-finite files."""
        return dapper_io.load_model(cls, path)

    def _load_state(self, path):
        dapper_io.load_checkpoint(self, path)

    def _set_state(self, meta, arrays):
        dapper_io.set_state(self, meta, arrays)

    def _rng_state_seed(self):
        s = getattr(self, "_rng_seed_for_resume", None)
        return s if s is not None else self.random_state


def _same_value(a, b) -> bool:
    try:
        return bool(a == b) and type(a) is type(b)
    except Exception:  # arrays or objects without a plain truth value
        return a is b


def _doc_reader(corpus):
    """(get_doc(global index) -> (word ids, counts), n_docs) for a Corpus or a ShardSet."""
    if isinstance(corpus, Corpus):
        def get(d):
            s, e = corpus.indptr[d], corpus.indptr[d + 1]
            return corpus.indices[s:e], corpus.counts[s:e]

        return get, corpus.n_docs
    starts = np.concatenate([[0], np.cumsum([s["n_docs"] for s in corpus.manifest["shards"]])])

    opened: dict = {}  # each shard is opened (and its checksum verified) once, not once per draw

    def get(d):
        i = int(np.searchsorted(starts, d, side="right") - 1)
        c = opened.get(i)
        if c is None:
            c = opened[i] = corpus.shard(i)
        j = d - starts[i]
        s, e = c.indptr[j], c.indptr[j + 1]
        return np.array(c.indices[s:e]), np.array(c.counts[s:e])

    return get, int(starts[-1])
