"""Compressive flows (thesis chapter 5): PPCA step speed, and test bits/dim on digits / Fashion-MNIST.

    python -m bench.bench_compressive speed   [--no-save]
    python -m bench.bench_compressive table   [--epochs 8] [--seeds 2] [--hidden 32] [--depth 2]
                                              [--kinds none maxpool ...] [--fractions 0.25 ...] [--resume]
                                              [--data digits|fashion-mnist] [--limit N] [--batch-size 64]
    python -m bench.bench_compressive summary [--data ...] (rows to results.csv + figure from the saved JSON)
    python -m bench.bench_compressive maxpool-ablation [--seeds 3] (max-pool, per-channel scales only)
    python -m bench.bench_compressive maxpool-parts    (seed 0: log-det / pool / base terms)

speed: PPCAStep.log_prob + backward at D = 784, d = 49, batch 256 against the dense
torch.distributions.MultivariateNormal(mu, A A^T + s2 I) path, same run, 1 thread.
table: scikit-learn's 8x8 digits (D = 64), the same RealNVP bijective part (hidden, depth)
and the same epochs for none / slice / PPCA / linear VAE / VAE / intermixed at kept
fractions 50 / 25 / 12 / 6 %, and the 2x2 max-pool surjection at 25 % (one pool) and 6 %
(6.25 %, two pools; other fractions are not reachable by pooling); bits/dim per data
dimension on the 297 test images; then
closed-form PPCA on the latents of the trained "none" flow (no retraining).
Results: bench/compressive_digits.json, bench/figures/compressive_digits.png, results.csv.
--data fashion-mnist: Debian's Fashion-MNIST (1x28x28, 256 levels, D = 784), the first
--limit training and limit // 5 test images; results in bench/compressive_fashion.json and
bench/figures/compressive_fashion.png, results.csv cases "fashion-mnist f=...".
"""
import argparse
import json
import os
import time

import numpy as np
import torch

from bench.harness import Recorder, measure, pin_threads, print_header

HERE = os.path.dirname(os.path.abspath(__file__))
FIG = os.path.join(HERE, "figures")
OUT_JSON = os.path.join(HERE, "compressive_digits.json")
# per data set: (JSON, figure, results.csv case prefix, plot title)
OUTPUTS = {"digits": (OUT_JSON, "compressive_digits.png", "digits", "digits 8x8"),
           "fashion-mnist": (os.path.join(HERE, "compressive_fashion.json"), "compressive_fashion.png",
                             "fashion-mnist", "Fashion-MNIST")}
FRACTIONS = (0.5, 0.25, 0.12, 0.06)
KINDS = ("slice", "maxpool", "ppca", "linear-vae", "vae", "intermixed")
MAXPOOL_FRACTIONS = (0.25, 0.06)  # 4^-1 and 4^-2 (6.25 %)


def speed(a, rec):
    from torch.distributions import MultivariateNormal

    from fastprob.flows import PPCAStep

    D, d, B = 784, 49, 256
    torch.manual_seed(0)
    st = PPCAStep(D, d)
    with torch.no_grad():
        st.A.copy_(torch.randn(D, d) / 4)
        st.mu.copy_(torch.randn(D))
    x = st.sample(B)

    def fast():
        st.zero_grad()
        st.log_prob(x).sum().backward()

    def dense():
        st.zero_grad()
        C = st.A @ st.A.T + st.s2 * torch.eye(D)
        MultivariateNormal(st.mu, covariance_matrix=C).log_prob(x).sum().backward()

    ref = measure(dense, repeat=a.repeat)
    got = measure(fast, repeat=a.repeat)
    case = f"D={D} d={d} B={B} fp32 fwd+bwd"
    rec.add(case, "dense-MultivariateNormal", "seconds", ref, "s")
    rec.add(case, "PPCAStep(Woodbury)", "seconds", got, "s", baseline="dense-MultivariateNormal",
            ratio=ref["median"] / got["median"], notes="memory O(D d) vs O(D^2)")


def table(a, rec):
    from fastprob.flows.compressive_train import compress_trained, train_compressive

    out_json = OUTPUTS[a.data][0]
    results = {"config": vars(a), "runs": [], "pretrained": []}
    if os.path.exists(out_json) and a.resume:
        with open(out_json) as f:
            results = json.load(f)
    done = {(r["kind"], r["fraction"], r["seed"]) for r in results["runs"]}
    c0, t0 = time.process_time(), time.perf_counter()
    kinds = a.kinds or ("none",) + KINDS
    fractions = a.fractions or FRACTIONS
    for seed in range(a.seeds):
        jobs = [("none", None)] if "none" in kinds else []
        jobs += [(k, f) for k in KINDS if k in kinds for f in fractions
                 if k != "maxpool" or f in MAXPOOL_FRACTIONS]
        for kind, f in jobs:
            if (kind, f, seed) in done:
                continue
            runs_dir = a.runs if a.data == "digits" else os.path.join(a.runs, a.data)
            out = os.path.join(runs_dir, f"none-s{seed}") if kind == "none" else None
            _, m = train_compressive(data=a.data, compress=kind, latent_fraction=f or 0.5, epochs=a.epochs,
                                     hidden=a.hidden, depth=a.depth, seed=seed, iw_samples=a.iw, out=out,
                                     limit=a.limit, batch_size=a.batch_size)
            row = {"kind": kind, "fraction": f, "seed": seed, "test_bpd": m["test_bpd"],
                   "test_bpd_iw": m.get("test_bpd_iw"), "test_bpd_exact_marginal": m.get("test_bpd_exact_marginal"),
                   "latent_dim": m["latent_dim"], "n_params": m["n_params"], "cpu_seconds": m["cpu_seconds"],
                   "seconds": m["seconds"]}
            results["runs"].append(row)
            print(f"   seed {seed} {kind:10s} f={f}: {m['test_bpd']:.4f} bits/dim"
                  + (f" (IW-{a.iw} {m['test_bpd_iw']:.4f})" if m.get("test_bpd_iw") else "")
                  + f"  [{m['cpu_seconds']:.0f} CPU-s]", flush=True)
            if kind == "none":
                rep = compress_trained(out, FRACTIONS, out=out, limit=a.limit)
                results["pretrained"].append({"seed": seed, "uncompressed": rep["uncompressed_test_bpd"],
                                              "full_gaussian_refit": rep.get("full_gaussian_refit_test_bpd"),
                                              "rows": rep["rows"]})
            results["cpu_seconds_total"] = results.get("cpu_seconds_total", 0) + m["cpu_seconds"]
            with open(out_json, "w") as fh:
                json.dump(results, fh, indent=1)
    print(f"   table: {time.process_time() - c0:.0f} CPU-s, {time.perf_counter() - t0:.0f} s wall")
    summarize(results, rec, a.data)
    plot(results, a.data)


def maxpool_ablation(a, rec):
    """Max-pool with per-channel half-normal scales only (no z-conditioned net), same budget."""
    from fastprob.flows.compressive_train import train_compressive

    with open(OUT_JSON) as f:
        results = json.load(f)
    rows = results.setdefault("maxpool_per_channel", [])
    done = {(r["fraction"], r["seed"]) for r in rows}
    for seed in range(a.seeds):
        for f in MAXPOOL_FRACTIONS:
            if (f, seed) in done:
                continue
            _, m = train_compressive(compress="maxpool", latent_fraction=f, epochs=a.epochs, hidden=a.hidden,
                                     depth=a.depth, seed=seed, pool_hidden=0)
            rows.append({"fraction": f, "seed": seed, "test_bpd": m["test_bpd"], "n_params": m["n_params"],
                         "cpu_seconds": m["cpu_seconds"], "seconds": m["seconds"]})
            print(f"   seed {seed} maxpool per-channel scales f={f}: {m['test_bpd']:.4f} bits/dim "
                  f"[{m['cpu_seconds']:.0f} CPU-s]", flush=True)
            with open(OUT_JSON, "w") as fh:
                json.dump(results, fh, indent=1)
    for f in MAXPOOL_FRACTIONS:
        v = [r["test_bpd"] for r in rows if r["fraction"] == f]
        print(f"   per-channel max-pool f={f}: {np.mean(v):.3f} +- {np.std(v):.3f} ({len(v)} seeds)")


def maxpool_parts(a, rec):
    """Where a max-pool model's test log-likelihood goes (seed 0): mean per image of the
    flow's log|det J|, each pool's log p(x | z), the base on the final latent; and the spread
    of the flow's output."""
    from fastprob.flows.compressive_train import train_compressive
    from fastprob.flows.data import load_images
    from fastprob.flows.ppca import std_normal_log_prob
    from fastprob.flows.preprocess import UniformDequantizer

    for f in MAXPOOL_FRACTIONS:
        model, m = train_compressive(compress="maxpool", latent_fraction=f, epochs=a.epochs, hidden=a.hidden,
                                     depth=a.depth, seed=0)
        model.eval()
        _, te, n_bins = load_images("digits", seed=0)
        torch.manual_seed(0)
        x, _ = UniformDequantizer(n_bins)(te)
        with torch.no_grad():
            zp, logdet = model.layers[0](x)
            h, pools = zp, []
            for step in model.layers[1:]:
                h, c = step(h)
                pools.append(round(float(c.mean()), 1))
            base = float(std_normal_log_prob(h.flatten(1)).mean())
        print(f"   max-pool f={f}: test bits/dim {m['test_bpd']:.4f}; nats per image: log|det J| "
              f"{float(logdet.mean()):.1f}, pools {pools}, base {base:.1f}; flow output std "
              f"{float(zp.std()):.3f}, final latent std {float(h.std()):.3f}", flush=True)


def summarize(results, rec, data="digits"):
    runs = results["runs"]
    for kind in ("none",) + KINDS:
        for f in ([None] if kind == "none" else FRACTIONS):
            v = [r["test_bpd"] for r in runs if r["kind"] == kind and r["fraction"] == f]
            if v:
                stats = {"median": float(np.mean(v)), "p25": float(np.min(v)), "p75": float(np.max(v))}
                rec.add(f"{OUTPUTS[data][2]} f={f or 1.0}", kind, "test_bpd(mean)", stats, "bits/dim",
                        notes=f"{len(v)} seeds; p25/p75 columns hold min/max")


def markdown(results):
    """The README table: mean test bits/dim (+- std over seeds) per kind and kept fraction."""
    runs = results["runs"]
    n_seeds = len({r["seed"] for r in runs})
    head = "| model | " + " | ".join(f"{f:.0%} kept" for f in FRACTIONS) + " |"
    lines = [head, "|---" * (len(FRACTIONS) + 1) + "|"]
    none = [r["test_bpd"] for r in runs if r["kind"] == "none"]
    if none:
        lines.append(f"| none (d = D, exact) | {np.mean(none):.3f} +- {np.std(none):.3f} (all) |"
                     + " |" * (len(FRACTIONS) - 1))
    names = {"slice": "slice (exact)", "ppca": "PPCA (exact)", "linear-vae": "linear VAE (ELBO)",
             "vae": "VAE (ELBO)", "intermixed": "intermixed conv VAEs (ELBO)",
             "maxpool": "max-pool surjection (exact)"}
    for kind in KINDS:
        cells = []
        for f in FRACTIONS:
            v = [r["test_bpd"] for r in runs if r["kind"] == kind and r["fraction"] == f]
            iw = [r["test_bpd_iw"] for r in runs if r["kind"] == kind and r["fraction"] == f and r.get("test_bpd_iw")]
            ex = [r["test_bpd_exact_marginal"] for r in runs
                  if r["kind"] == kind and r["fraction"] == f and r.get("test_bpd_exact_marginal")]
            c = "-" if not v else f"{np.mean(v):.3f}" + (f" +- {np.std(v):.3f}" if len(v) > 1 else "")
            if v and len(v) != n_seeds:
                c += f" ({len(v)} seed{'s' if len(v) > 1 else ''})"
            if kind == "maxpool" and f not in MAXPOOL_FRACTIONS:
                c = "n/a"
            if iw:
                c += f" (IW {np.mean(iw):.3f})"
            if ex:
                c += f" (exact {np.mean(ex):.3f})"
            cells.append(c)
        lines.append(f"| {names[kind]} | " + " | ".join(cells) + " |")
    pre = results.get("pretrained", [])
    if pre:
        cells = [f"{np.mean([r['test_bpd'] for p in pre for r in p['rows'] if r['fraction'] == f]):.3f}"
                 for f in FRACTIONS]
        lines.append("| PPCA fit in closed form to the trained 'none' flow's latents | " + " | ".join(cells) + " |")
    print("\n".join(lines))
    return lines


def plot(results=None, data="digits"):
    from fastprob.flows.compressive_train import plot_bpd_vs_fraction

    out_json, fig_name, _, data_title = OUTPUTS[data]
    if results is None:
        with open(out_json) as f:
            results = json.load(f)
    runs = results["runs"]
    series = {}
    for kind in KINDS:
        pts = []
        for f in FRACTIONS:
            v = [r["test_bpd"] for r in runs if r["kind"] == kind and r["fraction"] == f]
            if v:
                pts.append((f, float(np.mean(v)), float(np.std(v))))
        if pts:
            series[kind] = pts
    pre = results.get("pretrained", [])
    if pre:
        series["PPCA on trained 'none' latents"] = [
            (f, float(np.mean([r["test_bpd"] for p in pre for r in p["rows"] if r["fraction"] == f])), 0.0)
            for f in FRACTIONS]
    none = [r["test_bpd"] for r in runs if r["kind"] == "none"]
    os.makedirs(FIG, exist_ok=True)
    n_seeds = len({r["seed"] for r in runs})
    path = plot_bpd_vs_fraction(series, os.path.join(FIG, fig_name),
                                none_bpd=float(np.mean(none)) if none else None,
                                title=f"{data_title}, RealNVP + compressive step, {n_seeds} seed(s) (mean, std bars)")
    print(f"   wrote {os.path.relpath(path)}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["speed", "table", "summary", "maxpool-ablation", "maxpool-parts"])
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--iw", type=int, default=20, help="importance samples for the VAE kinds")
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--runs", default="runs/bench_compressive")
    ap.add_argument("--resume", action="store_true", help="skip runs already in the JSON")
    ap.add_argument("--kinds", nargs="+", choices=("none",) + KINDS, default=None,
                    help="only these models (default: all); with --resume, fill a table in priority order")
    ap.add_argument("--fractions", nargs="+", type=float, default=None, help="only these kept fractions")
    ap.add_argument("--data", default="digits", choices=sorted(OUTPUTS),
                    help="image set (fashion-mnist: Debian's dataset-fashion-mnist)")
    ap.add_argument("--limit", type=int, default=None,
                    help="first N training and N // 5 test images (default: all; digits: 1,500 / 297)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--no-save", action="store_true")
    a = ap.parse_args()
    if a.data != "digits" and a.what in ("maxpool-ablation", "maxpool-parts"):
        ap.error(f"{a.what} runs on digits only")
    pin_threads(1)
    h = print_header(f"compressive flows: {a.what}")
    rec = Recorder("compressive", h)
    if a.what == "summary":
        with open(OUTPUTS[a.data][0]) as f:
            results = json.load(f)
        summarize(results, rec, a.data)
        plot(results, a.data)
        markdown(results)
    elif a.what == "maxpool-ablation":
        maxpool_ablation(a, rec)
    elif a.what == "maxpool-parts":
        maxpool_parts(a, rec)
    else:
        (speed if a.what == "speed" else table)(a, rec)
    rec.save(not a.no_save)


if __name__ == "__main__":
    main()
