"""``fastprob flows train`` (bijective or compressive) and ``fastprob flows compress``."""
from __future__ import annotations


def add_commands(sub):
    pf = sub.add_parser("flows", help="normalizing flows").add_subparsers(dest="sub", required=True)
    t = pf.add_parser("train", help="train a multi-scale RealNVP or Glow on an image set")
    t.add_argument("--data", default="digits", choices=["digits", "fashion-mnist"])
    t.add_argument("--model", default="realnvp", choices=["realnvp", "glow"])
    t.add_argument("--epochs", type=int, default=30)
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--hidden", type=int, default=64)
    t.add_argument("--depth", type=int, default=3, help="couplings per scale (RealNVP) / steps per level (Glow)")
    t.add_argument("--dequant", choices=["uniform", "variational"], default="uniform")
    t.add_argument("--limit", type=int, default=None, help="use only this many training images")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto")
    t.add_argument("--out", default="runs/flows")
    t.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    t.add_argument("--compress", choices=["none", "slice", "ppca", "linear-vae", "vae", "intermixed", "maxpool"],
                   default=None, help="train a compressive flow (thesis ch. 5): RealNVP/Glow + this step (or "
                   "'intermixed'; 'maxpool': 2x2 max-pool surjection(s), fraction 0.25 or 0.0625)")
    t.add_argument("--latent-fraction", type=float, nargs="+", default=[0.25],
                   help="kept fraction(s) d/D of the latent with --compress (one model each)")
    t.add_argument("--anneal-epochs", type=int, default=None,
                   help="epochs over which the dual-base weight alpha rises 0 -> 1 (default: half)")
    t.add_argument("--iw-samples", type=int, default=0, help="also report importance-weighted bits/dim (VAE steps)")
    t.add_argument("--profile", action="store_true",
                   help="time data loading, forward, backward, optimizer per epoch (table, metrics.json, OUT/phases.png)")
    t.set_defaults(fn=cmd_train)
    c = pf.add_parser("compress", help="closed-form PPCA on the latents of a trained flow (no retraining)")
    c.add_argument("model", help="run directory (or checkpoint.pt) written by `fastprob flows train`")
    c.add_argument("--latent-fraction", type=float, nargs="+", default=[0.5, 0.25, 0.12, 0.06])
    c.add_argument("--out", default=None, help="report directory (default MODEL/compress)")
    c.set_defaults(fn=cmd_compress)


def cmd_train(a):
    if a.compress is not None:
        return cmd_train_compressive(a)
    from .train import train

    _, m = train(data=a.data, model=a.model, epochs=a.epochs, batch_size=a.batch_size, lr=a.lr, hidden=a.hidden,
                 depth=a.depth, dequant=a.dequant, out=a.out, resume=a.resume, seed=a.seed, device=a.device,
                 limit=a.limit, profile=a.profile)
    print(f"test bits/dim: {m['test_bpd']:.4f} ({a.model} on {a.data}, {len(m['history'])} epochs, "
          f"{m['n_params']} parameters)")
    print(f"wrote {a.out}/samples.png, metrics.json, checkpoint.pt" + (", phases.png" if a.profile else ""))


def cmd_train_compressive(a):
    import json
    import os

    from .compressive_train import plot_bpd_vs_fraction, train_compressive

    fractions = [None] if a.compress == "none" else a.latent_fraction
    if a.compress == "maxpool":  # refuse an unreachable fraction before training any model
        from .maxpool import maxpool_count

        for f in fractions:
            maxpool_count(f)
    rows = []
    for f in fractions:
        out = a.out if len(fractions) == 1 else os.path.join(a.out, f"f{f}")
        _, m = train_compressive(data=a.data, compress=a.compress, latent_fraction=f or 0.5, epochs=a.epochs,
                                 batch_size=a.batch_size, lr=a.lr, hidden=a.hidden, depth=a.depth,
                                 anneal_epochs=a.anneal_epochs, iw_samples=a.iw_samples, seed=a.seed,
                                 limit=a.limit, out=out, model=a.model)
        extra = "".join(f", {k} {m[k]:.4f}" for k in ("test_bpd_iw", "test_bpd_exact_marginal") if k in m)
        print(f"{a.compress} f={m['kept_fraction']:.3f} (d={m['latent_dim']} of {m['data_dim']}): test bits/dim "
              f"{m['test_bpd']:.4f}{'' if m['exact'] else ' (a bound)'}{extra}; wrote {out}/metrics.json, samples.png")
        rows.append({"fraction": f, "latent_dim": m["latent_dim"], "test_bpd": m["test_bpd"], "exact": m["exact"],
                     **{k: m[k] for k in ("test_bpd_iw", "test_bpd_exact_marginal") if k in m}})
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "report.json"), "w") as fh:
        json.dump({"data": a.data, "compress": a.compress, "rows": rows}, fh, indent=1)
    if a.compress != "none":
        plot_bpd_vs_fraction({a.compress: [(r["fraction"], r["test_bpd"]) for r in rows]},
                             os.path.join(a.out, "bpd_vs_fraction.png"), title=f"{a.compress} on {a.data}")
    print(f"wrote {a.out}/report.json" + ("" if a.compress == "none" else " and bpd_vs_fraction.png"))


def cmd_compress(a):
    import os

    from .compressive_train import compress_trained

    out = a.out or os.path.join(a.model if os.path.isdir(a.model) else os.path.dirname(a.model), "compress")
    rep = compress_trained(a.model, tuple(a.latent_fraction), out=out)
    print(f"uncompressed test bits/dim {rep['uncompressed_test_bpd']:.4f} (D = {rep['data_dim']}); with the base "
          f"refit as a full-covariance Gaussian (no compression): {rep['full_gaussian_refit_test_bpd']:.4f}")
    for r in rep["rows"]:
        print(f"  PPCA keeping {r['fraction']:.0%} (d={r['latent_dim']}): {r['test_bpd']:.4f} bits/dim "
              f"({r['delta_bpd']:+.4f})")
    print(f"wrote {out}/compress_report.json, bpd_vs_fraction.png, samples.png")
