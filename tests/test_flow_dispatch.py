"""Flow ops go through the one backend registry with a per-call device check, and the
flows read configuration only through fastprob._config."""
import gzip
import io
import pathlib
import re

import numpy as np
import pytest
import torch

import fastprob
from fastprob import BackendUnavailable, _config, _dispatch
from fastprob.flows import ops
from fastprob.reference import coupling as ref_coupling

FLOW_OPS = ("coupling", "squeeze", "unsqueeze", "squeeze_split", "unsqueeze_merge")


@pytest.fixture
def env(monkeypatch):
    """Set environment variables and re-read the configuration; restore both afterwards."""
    def set_(**kw):
        for k, v in kw.items():
            monkeypatch.setenv(k, v)
        _config.reload()
    yield set_
    monkeypatch.undo()
    _config.reload()


def test_cpu_tensors_use_the_reference_automatically(env):
    env(TRITON_INTERPRET="1")  # even with the interpreter on, it is never picked implicitly
    x = torch.randn(1, 2, 4, 4)
    for op in FLOW_OPS:
        name, f = _dispatch.resolve_for(op, (x,))
        assert name == "torch", op
    assert _dispatch.resolve_for("coupling", (x,))[1] is ref_coupling.coupling


def test_explicit_requests(env):
    pytest.importorskip("triton")
    x = torch.randn(1, 2, 4, 4)
    if not torch.cuda.is_available():
        env(TRITON_INTERPRET="1")
        assert _dispatch.resolve_for("coupling", (x,), "triton")[0] == "triton"
        env(TRITON_INTERPRET="0")
        with pytest.raises(BackendUnavailable, match="not on a CUDA device"):
            _dispatch.resolve_for("squeeze", (x,), "triton")
    env(FASTPROB_DISABLE_TRITON="1", TRITON_INTERPRET="1")
    with pytest.raises(BackendUnavailable, match="FASTPROB_DISABLE_TRITON=1"):
        ops.coupling(x, x, x, "checkerboard", 0, "exp", backend="triton")
    with pytest.raises(BackendUnavailable, match="no backend 'cuda'"):
        _dispatch.resolve_for("coupling", (x,), "cuda")
    with pytest.raises(ValueError, match="backend must be"):
        ops.squeeze(x, backend="cuda")


def test_show_backends_lists_the_flow_ops(env):
    out = io.StringIO()
    fastprob.show_backends(out)
    text = out.getvalue()
    for op in FLOW_OPS:
        assert re.search(rf"^{op}: (triton for CUDA tensors, else torch|torch)$", text, re.M), op
    env(FASTPROB_DISABLE_TRITON="1")
    out = io.StringIO()
    fastprob.show_backends(out)
    assert "coupling: torch\n" in out.getvalue() and "disabled by FASTPROB_DISABLE_TRITON=1" in out.getvalue()


def test_flows_read_no_environment_variables():
    root = pathlib.Path(fastprob.__file__).parent
    for path in sorted((root / "flows").glob("*.py")) + sorted((root / "models").glob("*.py")):
        assert "os.environ" not in path.read_text(), f"{path.name} reads the environment; use fastprob._config"


def _write_idx(path, images):
    n, h, w = images.shape
    header = bytes([0, 0, 8, 3]) + b"".join(int(v).to_bytes(4, "big") for v in (n, h, w))
    with gzip.open(path, "wb") as f:
        f.write(header + images.astype(np.uint8).tobytes())


def test_fashion_mnist_dir_comes_from_the_config(tmp_path, env):
    from fastprob.flows.data import load_images

    rng = np.random.default_rng(0)
    train, test = rng.integers(0, 256, (6, 4, 4)), rng.integers(0, 256, (3, 4, 4))
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", train)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", test)
    env(FASHION_MNIST_DIR=str(tmp_path))
    assert _config.config.fashion_mnist_dir == str(tmp_path)
    tr, te, n_bins = load_images("fashion-mnist")
    assert n_bins == 256 and tr.shape == (6, 1, 4, 4) and te.shape == (3, 1, 4, 4)
    assert np.array_equal(tr[:, 0].numpy(), train) and np.array_equal(te[:, 0].numpy(), test)
