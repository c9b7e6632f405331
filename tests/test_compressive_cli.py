"""`fastprob flows train --compress` and `fastprob flows compress` end to end (tiny runs)."""
import json
import os

import torch

from fastprob.cli import main
from fastprob.flows.compressive_train import compress_trained, load_trained_flow
from fastprob.flows.data import load_images
from fastprob.flows.train import evaluate_bpd

torch.set_num_threads(1)


def test_train_compressive_and_compress_a_trained_flow(tmp_path):
    out = str(tmp_path / "ppca")
    main(["flows", "train", "--data", "digits", "--compress", "ppca", "--latent-fraction", "0.25", "--epochs", "1",
          "--hidden", "8", "--depth", "1", "--limit", "120", "--out", out])
    m = json.load(open(os.path.join(out, "metrics.json")))
    assert m["latent_dim"] == 16 and m["data_dim"] == 64 and m["exact"]
    assert 0 < m["test_bpd"] < 10
    assert os.path.exists(os.path.join(out, "samples.png")) and os.path.exists(os.path.join(out, "report.json"))

    flow = str(tmp_path / "flow")
    main(["flows", "train", "--data", "digits", "--epochs", "1", "--hidden", "8", "--depth", "1", "--limit", "120",
          "--out", flow])
    rep = compress_trained(flow, (0.5, 0.06), out=str(tmp_path / "c"))
    assert [r["latent_dim"] for r in rep["rows"]] == [32, 4]
    # the uncompressed number is the flow's own evaluation (train.py's evaluate_bpd, same test set)
    net, dq, cfg = load_trained_flow(flow)
    _, te, n_bins = load_images("digits", seed=cfg["seed"])
    assert abs(rep["uncompressed_test_bpd"] - evaluate_bpd(net, dq, te, n_bins)) < 1e-4
    for name in ("compress_report.json", "bpd_vs_fraction.png", "samples.png"):
        assert os.path.exists(tmp_path / "c" / name)
    main(["flows", "compress", flow, "--latent-fraction", "0.25"])
    assert os.path.exists(os.path.join(flow, "compress", "compress_report.json"))
