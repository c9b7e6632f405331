"""VAE with a boosted flow posterior (thesis table 8, figure 11) at laptop scale.

    python -m bench.bench_gbnf_vae table [--data digits] [--seeds 3] [--epochs 20] [--no-save]
    python -m bench.bench_gbnf_vae shock [--data digits] [--epochs 20] [--no-save]

table: test -ELBO and importance-sampled NLL (k = 1000) on dynamically binarized images of
a plain VAE (diagonal Gaussian posterior), a VAE with one RealNVP posterior of the same total
depth as the boosted one (2 C couplings), and boosted VAEs with C = 2 and 4 components of
2 couplings each, before (GBNF) and after (GBNF+) a fine-tuning pass; same encoder, decoder
and total number of epochs (4 x --epochs, then 4 x --finetune more: fine-tuning for the
boosted models, plain further training for the single-posterior ones) for every model;
mean +- std over seeds.  Also
the seconds per epoch of the boosted model against the single flow of equal depth.
shock: C = 4 with the decoder-shock mitigation per sample (default), per batch and off;
training curves (bench/figures/gbnf_vae_shock_<data>.png) and the final NLL of each.
"""
import argparse
import json
import os
import statistics
import tempfile
import time

import numpy as np

from bench.harness import Recorder, pin_threads, print_header
from fastprob.models import BoostedVAE, fit_boosted_vae
from fastprob.models.vae_cli import load_binarized
from fastprob.models.vae_plots import plot_training_curves

FIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "figures")


def _model(x_dim, C, depth, a, seed):
    return BoostedVAE(x_dim, latent_dim=a.latent, n_components=C, depth=depth, hidden=a.hidden, flow_hidden=64,
                      seed=seed)


def run(data, C, depth, epochs, a, seed, mitigation="sample", objective="boosting", finetune=0):
    """Train; returns ({"plain": eval, "finetuned": eval or None}, history, seconds, cpu seconds)."""
    xt, xv, xte = data
    m = _model(xt.shape[1], C, depth, a, seed)
    t0, c0 = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as d:
        ck = os.path.join(d, "ck.pt")
        kw = dict(epochs=epochs, finetune_epochs=finetune, mitigation=mitigation, objective=objective,
                  dynamic_binarize=True, seed=seed, checkpoint=ck, progress=False, kl_anneal_epochs=a.kl_anneal)
        h = fit_boosted_vae(m, xt, xv, max_epochs=C * epochs, **kw)
        res = {"plain": m.evaluate(xte, k=a.k, seed=seed), "finetuned": None}
        if finetune:
            h = fit_boosted_vae(m, xt, xv, **kw)
            res["finetuned"] = m.evaluate(xte, k=a.k, seed=seed)
    return res, h, time.perf_counter() - t0, time.process_time() - c0


def _load(a):
    xt, xv, xte, _ = load_binarized(a.data, 0, a.limit)
    return xt, xv, xte


def table(a, rec):
    data = _load(a)
    E = a.epochs
    specs = [("VAE (diagonal Gaussian)", 1, 0, 4 * E, "boosting"),
             ("RealNVP posterior, 8 couplings", 1, 8, 4 * E, "boosting"),
             ("GBNF C=2 x 2 couplings", 2, 2, 2 * E, "boosting"),
             ("GBNF C=4 x 2 couplings", 4, 2, E, "boosting"),
             ("GBNF C=4, mixture objective", 4, 2, E, "mixture")]
    results, epoch_s, epoch_cpu = {}, {}, {}
    for label, C, depth, ep, obj in specs:
        for seed in range(a.seeds):
            # fine-tuning budget: 4 x --finetune epochs in all, whatever C (C = 1: more training of the one flow)
            res, h, wall, cpu = run(data, C, depth, ep, a, seed, objective=obj, finetune=a.finetune * 4 // C)
            results.setdefault(label, []).append(res)
            epoch_s.setdefault(label, []).extend(r["seconds"] for r in h["epochs"] if r["stage"] == "boost")
            epoch_cpu.setdefault(label, []).extend(r["cpu_seconds"] for r in h["epochs"] if r["stage"] == "boost")
            rs = [round(x["rho"], 3) for x in h["rho"]]
            print(f"   {label} seed {seed}: NLL {res['plain']['nll']:.3f}"
                  + (f" -> {res['finetuned']['nll']:.3f} fine-tuned" if res["finetuned"] else "")
                  + f"; rho {rs}; {wall:.0f}s wall, {cpu:.0f}s CPU", flush=True)
    case = f"{a.data} binarized, {a.seeds} seeds, {4 * E} epochs"
    summary = {}
    for label, rs in results.items():
        for kind in ("plain", "finetuned"):
            ev = [r[kind] for r in rs if r[kind] is not None]
            if not ev:
                continue
            name = label if kind == "plain" else (label.replace("GBNF", "GBNF+") if "GBNF" in label
                                                  else label + " + fine-tuning epochs")
            for metric in ("neg_elbo", "nll"):
                v = [e[metric] for e in ev]
                mean, sd = float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0
                summary.setdefault(name, {})[metric] = (mean, sd)
                rec.add(case, name, metric, {"median": mean, "p25": mean - sd, "p75": mean + sd}, "nats",
                        notes=f"mean +- std over seeds (p25/p75 columns hold mean -+ std); k={a.k}; "
                              f"IS se per run ~{np.mean([e[metric + '_se'] for e in ev]):.2f}")
    for what, times in (("wall s/epoch", epoch_s), ("CPU s/epoch", epoch_cpu)):
        base = statistics.median(times["RealNVP posterior, 8 couplings"])
        for label in ("GBNF C=4 x 2 couplings", "GBNF C=2 x 2 couplings", "RealNVP posterior, 8 couplings",
                      "VAE (diagonal Gaussian)"):
            s = sorted(times[label])
            q = statistics.quantiles(s, n=4)
            rec.add(f"{a.data}: training epoch", label, what, {"median": statistics.median(s), "p25": q[0],
                    "p75": q[2]}, "s", baseline="RealNVP posterior, 8 couplings", ratio=statistics.median(s) / base,
                    notes="all boosting-stage epochs of all seeds; 1 torch thread")
    print(json.dumps(summary, indent=1))


def shock(a, rec):
    data = _load(a)
    runs = []
    for mit in ("sample", "batch", "off"):
        res, h, wall, cpu = run(data, 4, 2, a.epochs, a, 0, mitigation=mit)
        runs.append((f"mitigation={mit}: NLL {res['plain']['nll']:.2f}", h))
        rec.add(f"{a.data} C=4, {a.epochs} epochs/component, seed 0", f"mitigation={mit}", "nll",
                res["plain"]["nll"], "nats", notes=f"se {res['plain']['nll_se']:.2f}; -ELBO "
                f"{res['plain']['neg_elbo']:.2f}; {wall:.0f}s wall, {cpu:.0f}s CPU")
        # the shock: how far the trained mixture's validation -ELBO rises in the first epochs of a new stage
        ep = h["epochs"]
        jumps = []
        for c in range(1, 4):
            st = [r for r in ep if r["stage"] == "boost" and r["component"] == c]
            before = [r for r in ep if r["stage"] == "boost" and r["component"] == c - 1][-1]["val_neg_elbo_new"]
            jumps.append(max(r["val_neg_elbo_fixed"] for r in st) - min(before, st[0]["val_neg_elbo_fixed"]))
        rec.add(f"{a.data} C=4, {a.epochs} epochs/component, seed 0", f"mitigation={mit}", "max val jump",
                float(np.mean(jumps)), "nats", notes="mean over switches of max(val -ELBO of fixed G during "
                "stage c) - val -ELBO at the switch; per switch " + ", ".join(f"{j:.2f}" for j in jumps))
    os.makedirs(FIG, exist_ok=True)
    path = os.path.join(FIG, f"gbnf_vae_shock_{a.data}.png")
    plot_training_curves(runs, path, title=f"decoder shock on {a.data} (C=4; dotted: new component)")
    print(f"   wrote {os.path.relpath(path)}")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["table", "shock"])
    ap.add_argument("--data", default="digits", choices=["digits", "fashion-mnist"])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=20, help="epochs per component of the C = 4 model")
    ap.add_argument("--finetune", type=int, default=5, help="fine-tuning epochs per component (GBNF+)")
    ap.add_argument("--kl-anneal", type=float, default=5)
    ap.add_argument("--latent", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--no-save", action="store_true")
    a = ap.parse_args(argv)
    pin_threads(1)
    h = print_header(f"boosted VAE {a.what} ({a.data})")
    rec = Recorder(f"gbnf_vae_{a.what}", h)
    {"table": table, "shock": shock}[a.what](a, rec)
    rec.save(not a.no_save)


if __name__ == "__main__":
    main()
