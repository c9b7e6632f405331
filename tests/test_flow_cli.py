"""End-to-end runs of ``fastprob flows train``, ``fastprob gbnf train`` and ``fastprob gbnf match``
on tiny settings: outputs written, printed numbers equal to the files, models reloadable."""
import json
import math
import re

import pytest
import torch

from fastprob.cli import main

pytest.importorskip("matplotlib", reason="the commands write plots")


def _png(path):
    return path.read_bytes()[:4] == b"\x89PNG"


def test_flows_train_cli_and_resume(tmp_path, capsys, monkeypatch):
    pytest.importorskip("sklearn", reason="the digits data set comes with scikit-learn")
    monkeypatch.setenv("FASTPROB_PROGRESS", "0")
    out = tmp_path / "run"
    args = ["flows", "train", "--data", "digits", "--limit", "64", "--hidden", "8", "--depth", "1",
            "--out", str(out)]
    main(args + ["--epochs", "1"])
    printed = capsys.readouterr().out
    m = json.loads((out / "metrics.json").read_text())
    bpd = float(re.search(r"test bits/dim: ([0-9.]+)", printed).group(1))
    assert math.isfinite(m["test_bpd"]) and abs(bpd - m["test_bpd"]) < 1e-4
    assert f"{m['n_params']} parameters" in printed
    assert _png(out / "samples.png")
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ckpt["epoch"] == 1 and ckpt["config"]["model"] == "realnvp"
    main(args + ["--epochs", "2", "--resume"])
    m2 = json.loads((out / "metrics.json").read_text())
    assert [h["epoch"] for h in m2["history"]] == [1, 2] and m2["history"][0] == m["history"][0]
    with pytest.raises(SystemExit):  # argparse rejects an unknown model
        main(["flows", "train", "--model", "maf", "--out", str(out)])


def test_gbnf_train_cli(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FASTPROB_PROGRESS", "0")
    from fastprob.datasets.toy2d import sample_toy
    from fastprob.models import BoostedFlow
    from fastprob.models.cli import _maker

    out = tmp_path / "gbnf"
    n = 400
    main(["gbnf", "train", "--data", "moons", "--components", "2", "--epochs", "1", "--n", str(n), "--depth", "2",
          "--hidden", "8", "--out", str(out)])
    printed = capsys.readouterr().out
    m = json.loads((out / "metrics.json").read_text())
    assert len(m["rho"]) == 2 and m["rho"][0] == 1.0 and 0.0 <= m["rho"][1] <= 1.0
    assert _png(out / "density.png")
    # the saved model reproduces the reported held-out log-likelihood on the same test points
    b = BoostedFlow.load(out / "gbnf.pt", _maker(2, 8, 0))
    pts = torch.tensor(sample_toy("moons", n + 2 * 5000, seed=0), dtype=torch.float32)
    with torch.no_grad():
        test_ll = float(b.log_prob(pts[n + 5000:]).mean())
    assert abs(test_ll - m["test_loglik"]) < 1e-9
    assert f"boosted C=2 {m['test_loglik']:.4f}" in printed


def test_gbnf_match_cli(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FASTPROB_PROGRESS", "0")
    out = tmp_path / "match"
    main(["gbnf", "match", "--energy", "U1", "--components", "2", "--depth", "2", "--steps", "10",
          "--out", str(out)])
    printed = capsys.readouterr().out
    m = json.loads((out / "metrics.json").read_text())
    kls = m["kl_minus_logZ_per_component"]
    assert len(kls) == 2 and all(math.isfinite(k) for k in kls) and len(m["rho"]) == 2
    assert " ".join(f"{k:.4f}" for k in kls) in printed
    assert _png(out / "density.png")
