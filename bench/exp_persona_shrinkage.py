"""Experiment (not a feature): shrink persona trajectories towards the corpus-wide mean.

    python -m bench.exp_persona_shrinkage --corpus debian --topics 50 --kappa 20 200

Tests the explanation of DAPPER's held-out decline on the Debian changelogs (README, issue
10): the persona means of topics a persona hardly uses drift down epoch after epoch.  Here
every alpha-step gets ``kappa`` pseudo-documents per (step, persona) whose topic vector is
the document-weighted mean of all documents' m at that step, i.e. a Gaussian pull of each
persona's mean towards the corpus-wide one.  It is a subclass that changes only the
alpha-step statistics, so the reported ELBO is not the objective being maximized and is not
checked here; a real feature would make the corpus-wide trajectory a global variable with
its own term in the objective.  Prints held-out PWLL against training CPU seconds (1
thread, seed 0, the split of bench.bench_pwll_curve).
"""
import argparse

from bench.real_corpora import NAMES, quiet_single_thread, train_test

quiet_single_thread()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", choices=NAMES, default="debian")
    ap.add_argument("--topics", type=int, default=50)
    ap.add_argument("--budget", type=float, default=30.0)
    ap.add_argument("--kappa", type=float, nargs="+", default=[20.0])
    a = ap.parse_args(argv)
    import numpy as np

    from fastprob.topics import DAPPER, mstep

    class Shrunk(DAPPER):
        kappa = 0.0

        def _alpha_update(self):
            n, M = self.n_stat_, self.M_stat_
            mbar = M.sum(1, keepdims=True) / np.maximum(n.sum(1, keepdims=True), 1e-12)[..., None]
            a_, var, info = mstep.alpha_step(n + self.kappa, M + self.kappa * np.broadcast_to(mbar, M.shape),
                                             self.time_values_, self.process_noise, self._s2, self.mu0,
                                             self.sigma0, self.regularization)
            self.alpha_, self.alpha_var_ = a_, var
            self._alpha_cov_off, self._alpha_logdet = info["cov_off"], info["logdet_post"]
            self.last_alpha_residual_ = info["residual"]
            return info

    tr, te = train_test(a.corpus)
    for kappa in a.kappa:
        Shrunk.kappa = kappa
        m = Shrunk(a.topics, 10, max_epochs=1, tol=0, n_jobs=1, progress=False, random_state=0).fit(tr)
        cpu, pts = m.history_[-1]["cpu_seconds"], []
        while True:
            pts.append((round(cpu, 1), round(m.score(te), 4)))
            if cpu >= a.budget:
                break
            m.max_epochs += 1
            m.fit(tr, resume=True)
            cpu += m.history_[-1]["cpu_seconds"]
        best = max(pts, key=lambda p: p[1])
        print(f"{a.corpus} K={a.topics} kappa={kappa:g}: final {pts[-1][1]} at {pts[-1][0]} CPU-s "
              f"({m.epoch_} epochs), best {best[1]} at {best[0]}; curve {pts[::8]}", flush=True)


if __name__ == "__main__":
    main()
