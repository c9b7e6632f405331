"""``fastprob flows train``."""
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
    t.add_argument("--profile", action="store_true",
                   help="time data loading, forward, backward, optimizer per epoch (table, metrics.json, OUT/phases.png)")
    t.set_defaults(fn=cmd_train)


def cmd_train(a):
    from .train import train

    _, m = train(data=a.data, model=a.model, epochs=a.epochs, batch_size=a.batch_size, lr=a.lr, hidden=a.hidden,
                 depth=a.depth, dequant=a.dequant, out=a.out, resume=a.resume, seed=a.seed, device=a.device,
                 limit=a.limit, profile=a.profile)
    print(f"test bits/dim: {m['test_bpd']:.4f} ({a.model} on {a.data}, {len(m['history'])} epochs, "
          f"{m['n_params']} parameters)")
    print(f"wrote {a.out}/samples.png, metrics.json, checkpoint.pt" + (", phases.png" if a.profile else ""))
