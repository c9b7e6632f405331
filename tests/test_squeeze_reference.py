"""The plain squeeze reference (view + permute) against torch's pixel_unshuffle / pixel_shuffle,
an independent implementation of the ``standard`` order: values, gradients, odd and empty shapes."""
import pytest
import torch
import torch.nn.functional as F

from fastprob.reference import squeeze as rq


@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (3, 5, 6, 10), (1, 1, 2, 2), (2, 2, 4, 12), (1, 7, 2, 6)])
def test_standard_squeeze_is_pixel_unshuffle(shape):
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    z = rq.squeeze(x, "standard")
    assert torch.equal(z, F.pixel_unshuffle(x, 2))
    w = torch.randn_like(z)
    g, = torch.autograd.grad((z * w).sum(), x)
    assert torch.equal(g, F.pixel_shuffle(w, 2))
    zz = torch.randn(z.shape, dtype=torch.float64, requires_grad=True)
    u = rq.unsqueeze(zz, "standard")
    assert torch.equal(u, F.pixel_shuffle(zz, 2))
    g, = torch.autograd.grad((u * x.detach()).sum(), zz)
    assert torch.equal(g, F.pixel_unshuffle(x.detach(), 2))


def test_non_contiguous_and_empty_inputs():
    x = torch.randn(3, 4, 6, 8).transpose(2, 3)  # (3, 4, 8, 6), not contiguous
    assert torch.equal(rq.squeeze(x, "standard"), F.pixel_unshuffle(x.contiguous(), 2))
    assert rq.squeeze(torch.rand(0, 3, 4, 4), "standard").shape == (0, 12, 2, 2)
    assert rq.unsqueeze(torch.rand(0, 12, 2, 2), "standard").shape == (0, 3, 4, 4)
