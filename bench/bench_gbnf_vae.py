"""VAE with a boosted flow posterior (thesis table 8, figure 11) at laptop scale.

    python -m bench.bench_gbnf_vae table [--data digits|fashion-mnist|lfw|lfw-all] [--seeds 3] [--epochs 20]
        [--objectives boosting,mixture] [--limit N] [--k 1000] [--batch-size 100] [--json PATH] [--no-save]
    python -m bench.bench_gbnf_vae shock [--data digits] [--epochs 20] [--no-save]

table: test -ELBO and importance-sampled NLL (k = 1000) on dynamically binarized images of
a plain VAE (diagonal Gaussian posterior), a VAE with one RealNVP posterior of the same total
depth as the boosted one (2 C couplings), and boosted VAEs with C = 2 and 4 components of
2 couplings each, before (GBNF) and after (GBNF+) a fine-tuning pass; same encoder, decoder
and total number of epochs (4 x --epochs, then 4 x --finetune more: fine-tuning for the
boosted models, plain further training for the single-posterior ones) for every model;
mean +- std over seeds (on the gray-level LFW sets also in bits/dim: nats / (D ln 2)).  Also
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
from fastprob.models.vae_cli import DATASETS, load_vae_data
from fastprob.models.vae_data import bits_per_dim
from fastprob.models.vae_plots import plot_training_curves

FIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "figures")


def _model(x_dim, C, depth, a, seed, lik):
    return BoostedVAE(x_dim, latent_dim=a.latent, n_components=C, depth=depth, hidden=a.hidden, flow_hidden=64,
                      seed=seed, **lik)


def run(data, C, depth, epochs, a, seed, mitigation="sample", objective="boosting", finetune=0):
    """Train; returns ({"plain": eval, "finetuned": eval or None}, history, seconds, cpu seconds)."""
    xt, xv, xte, lik, dynamic = data
    m = _model(xt.shape[1], C, depth, a, seed, lik)
    t0, c0 = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as d:
        ck = os.path.join(d, "ck.pt")
        kw = dict(epochs=epochs, finetune_epochs=finetune, mitigation=mitigation, objective=objective,
                  dynamic_binarize=dynamic, seed=seed, checkpoint=ck, progress=False, kl_anneal_epochs=a.kl_anneal,
                  batch_size=a.batch_size, lr=a.lr)
        h = fit_boosted_vae(m, xt, xv, max_epochs=C * epochs, **kw)
        res = {"plain": m.evaluate(xte, k=a.k, seed=seed), "finetuned": None}
        if finetune:
            h = fit_boosted_vae(m, xt, xv, **kw)
            res["finetuned"] = m.evaluate(xte, k=a.k, seed=seed)
    return res, h, time.perf_counter() - t0, time.process_time() - c0


def _load(a):
    xt, xv, xte, _, lik, dynamic = load_vae_data(a.data, 0, a.limit)
    if a.n_test:
        xte = xte[:a.n_test]
    print(f"   {a.data}: {xt.shape[0]} train, {xv.shape[0]} validation, {xte.shape[0]} test images of "
          f"{xt.shape[1]} pixels; {lik}", flush=True)
    return xt, xv, xte, lik, dynamic


def table(a, rec):
    data = _load(a)
    E = a.epochs
    objs = a.objectives.split(",")
    specs = [("VAE (diagonal Gaussian)", 1, 0, 4 * E, "boosting"),
             ("RealNVP posterior, 8 couplings", 1, 8, 4 * E, "boosting")]
    for C in (2, 4):
        if "boosting" in objs:
            specs.append((f"GBNF C={C} x 2 couplings", C, 2, 4 * E // C, "boosting"))
        if "mixture" in objs:
            specs.append((f"GBNF C={C}, mixture objective", C, 2, 4 * E // C, "mixture"))
    gray = not data[4]
    results, epoch_s, epoch_cpu, runs = {}, {}, {}, []
    for label, C, depth, ep, obj in specs:
        for seed in range(a.seeds):
            # fine-tuning budget: 4 x --finetune epochs in all, whatever C (C = 1: more training of the one flow)
            res, h, wall, cpu = run(data, C, depth, ep, a, seed, objective=obj, finetune=a.finetune * 4 // C)
            results.setdefault(label, []).append(res)
            epoch_s.setdefault(label, []).extend(r["seconds"] for r in h["epochs"] if r["stage"] == "boost")
            epoch_cpu.setdefault(label, []).extend(r["cpu_seconds"] for r in h["epochs"] if r["stage"] == "boost")
            rs = [round(x["rho"], 3) for x in h["rho"]]
            runs.append({"model": label, "seed": seed, "wall_s": wall, "cpu_s": cpu, "rho": [x["rho"] for x in h["rho"]],
                         "plain": res["plain"], "finetuned": res["finetuned"],
                         "boost_epoch_cpu_s": [r["cpu_seconds"] for r in h["epochs"] if r["stage"] == "boost"]})
            print(f"   {label} seed {seed}: NLL {res['plain']['nll']:.3f}"
                  + (f" -> {res['finetuned']['nll']:.3f} fine-tuned" if res["finetuned"] else "")
                  + f"; rho {rs}; {wall:.0f}s wall, {cpu:.0f}s CPU", flush=True)
    case = f"{a.data} {'gray' if gray else 'binarized'}, {a.seeds} seeds, {4 * E} epochs"
    D = data[0].shape[1]
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
                se = float(np.mean([e[metric + "_se"] for e in ev]))
                summary.setdefault(name, {})[metric] = (mean, sd)
                summary[name][metric + "_se"] = se
                rec.add(case, name, metric, {"median": mean, "p25": mean - sd, "p75": mean + sd}, "nats",
                        notes=f"mean +- std over seeds (p25/p75 columns hold mean -+ std); k={a.k}; "
                              f"IS se per run ~{se:.2f}")
                if gray:  # bits per dimension of the 256-level images: nats / (D ln 2)
                    b, bs = bits_per_dim(mean, D), bits_per_dim(sd, D)
                    summary[name][metric + "_bpd"] = (b, bs)
                    summary[name][metric + "_se_bpd"] = bits_per_dim(se, D)
                    rec.add(case, name, metric + " bits/dim", {"median": b, "p25": b - bs, "p75": b + bs},
                            "bits/dim", notes=f"nats / ({D} ln 2); mean +- std over seeds; k={a.k}; "
                                              f"IS se per run ~{bits_per_dim(se, D):.4f}")
    for what, times in (("wall s/epoch", epoch_s), ("CPU s/epoch", epoch_cpu)):
        base = statistics.median(times["RealNVP posterior, 8 couplings"])
        for label in times:
            s = sorted(times[label])
            q = statistics.quantiles(s, n=4)
            rec.add(f"{a.data}: training epoch", label, what, {"median": statistics.median(s), "p25": q[0],
                    "p75": q[2]}, "s", baseline="RealNVP posterior, 8 couplings", ratio=statistics.median(s) / base,
                    notes="all boosting-stage epochs of all seeds; 1 torch thread")
    print(json.dumps(summary, indent=1))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"data": a.data, "args": vars(a), "n_train": data[0].shape[0], "n_val": data[1].shape[0],
                       "n_test": data[2].shape[0], "dim": D, "summary": summary, "runs": runs,
                       "total_cpu_s": sum(r["cpu_s"] for r in runs), "total_wall_s": sum(r["wall_s"] for r in runs)},
                      f, indent=1)
        print(f"   wrote {a.json}")


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
    ap.add_argument("--data", default="digits", choices=list(DATASETS))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=20, help="epochs per component of the C = 4 model")
    ap.add_argument("--finetune", type=int, default=5, help="fine-tuning epochs per component (GBNF+)")
    ap.add_argument("--kl-anneal", type=float, default=5)
    ap.add_argument("--latent", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--n-test", type=int, default=None, help="evaluate on the first N test images only")
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--objectives", default="boosting,mixture",
                    help="GBNF objectives for C = 2 and 4 (comma-separated: boosting = eq. 4.21, mixture)")
    ap.add_argument("--json", default=None, help="also write the summary and per-run results to this JSON file")
    ap.add_argument("--no-save", action="store_true")
    a = ap.parse_args(argv)
    pin_threads(1)
    h = print_header(f"boosted VAE {a.what} ({a.data})")
    rec = Recorder(f"gbnf_vae_{a.what}", h)
    {"table": table, "shock": shock}[a.what](a, rec)
    rec.save(not a.no_save)


if __name__ == "__main__":
    main()
