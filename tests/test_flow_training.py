"""Flow training end to end on a small slice of the digits: bits/dim, samples, resume."""
import json

import pytest
import torch

pytest.importorskip("sklearn", reason="the digits data set comes with scikit-learn")

from fastprob.flows.data import load_images  # noqa: E402
from fastprob.flows.train import train  # noqa: E402


def test_digits_loader():
    tr, te, n_bins = load_images("digits")
    assert tr.shape[1:] == (1, 8, 8) and n_bins == 17 and int(tr.max()) <= 16
    assert tr.shape[0] + te.shape[0] == 1797
    with pytest.raises(ValueError, match="unknown image data set"):
        load_images("cifar")


@pytest.mark.parametrize("model,dequant", [("realnvp", "uniform"), ("glow", "variational")])
def test_train_resume_and_outputs(tmp_path, model, dequant, monkeypatch):
    monkeypatch.setenv("FASTPROB_PROGRESS", "0")
    out = tmp_path / model
    _, m1 = train(model=model, dequant=dequant, epochs=1, limit=128, hidden=16, depth=2, out=str(out), progress=False)
    assert m1["test_bpd"] < 6.0  # log2(17) = 4.09 bits/dim is a uniform model; an untrained flow is worse
    _, m2 = train(model=model, dequant=dequant, epochs=2, limit=128, hidden=16, depth=2, out=str(out), resume=True,
                  progress=False)
    assert [h["epoch"] for h in m2["history"]] == [1, 2]
    assert m2["history"][0] == m1["history"][0]
    assert (out / "samples.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((out / "metrics.json").read_text())["test_bpd"] == m2["test_bpd"]
    with pytest.raises(ValueError, match="not model"):
        train(model="glow" if model == "realnvp" else "realnvp", epochs=3, limit=128, out=str(out), resume=True,
              progress=False)
