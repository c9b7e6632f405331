"""Normalizing-flow building blocks with fused kernels (conventions: flows-model.md).

Blocks map data to latent: ``forward(x) -> (z, logdet)``, ``inverse(z) -> (x, logdet)``.
"""
from .._optional import require

require("torch", "flows", "fastprob.flows")  # a clear message when the extra is missing
from . import ops  # noqa: E402
from .actnorm import ActNorm  # noqa: E402
from .base import DiagonalGaussian, Flow, Split, StandardNormal, Transform  # noqa: E402
from .conditional import (ConditionalActNorm, ConditionalCoupling, ConditionalInvConv1x1,  # noqa: E402
                          ConditionalVectorCoupling, SelectContext)
from .builders import glow, glow_vector, realnvp_image, realnvp_vector  # noqa: E402
from .compressive import CompressiveFlow, SliceStep, intermixed_flow, latent_size  # noqa: E402
from .conv1x1 import InvConv1x1  # noqa: E402
from .coupling import AffineCoupling, VectorCoupling  # noqa: E402
from .maxpool import MaxPoolStep  # noqa: E402
from .ppca import PPCAStep  # noqa: E402
from .preprocess import Logit, UniformDequantizer, VariationalDequantizer, bits_per_dim  # noqa: E402
from .squeeze import ChannelSplit, Squeeze, SqueezeSplit  # noqa: E402
from .vae_steps import LinearVAEStep, VAEStep  # noqa: E402

__all__ = [
    "ActNorm",
    "AffineCoupling",
    "ChannelSplit",
    "CompressiveFlow",
    "ConditionalActNorm",
    "ConditionalCoupling",
    "ConditionalInvConv1x1",
    "ConditionalVectorCoupling",
    "DiagonalGaussian",
    "Flow",
    "InvConv1x1",
    "LinearVAEStep",
    "Logit",
    "MaxPoolStep",
    "PPCAStep",
    "SelectContext",
    "SliceStep",
    "Split",
    "Squeeze",
    "SqueezeSplit",
    "StandardNormal",
    "Transform",
    "UniformDequantizer",
    "VAEStep",
    "VariationalDequantizer",
    "VectorCoupling",
    "bits_per_dim",
    "glow",
    "glow_vector",
    "intermixed_flow",
    "latent_size",
    "ops",
    "realnvp_image",
    "realnvp_vector",
]
