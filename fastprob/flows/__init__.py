"""Normalizing-flow building blocks with fused kernels (conventions: flows-model.md).

Blocks map data to latent: ``forward(x) -> (z, logdet)``, ``inverse(z) -> (x, logdet)``.
"""
from . import ops
from .actnorm import ActNorm
from .base import DiagonalGaussian, Flow, Split, StandardNormal, Transform
from .conditional import (ConditionalActNorm, ConditionalCoupling, ConditionalInvConv1x1, ConditionalVectorCoupling,
                          SelectContext)
from .builders import glow, glow_vector, realnvp_image, realnvp_vector
from .conv1x1 import InvConv1x1
from .coupling import AffineCoupling, VectorCoupling
from .preprocess import Logit, UniformDequantizer, VariationalDequantizer, bits_per_dim
from .squeeze import ChannelSplit, Squeeze, SqueezeSplit

__all__ = ["ActNorm", "AffineCoupling", "ChannelSplit", "ConditionalActNorm", "ConditionalCoupling",
           "ConditionalInvConv1x1", "ConditionalVectorCoupling", "SelectContext", "DiagonalGaussian", "Flow", "InvConv1x1", "Logit",
           "Split", "Squeeze", "SqueezeSplit", "StandardNormal", "Transform", "UniformDequantizer",
           "VariationalDequantizer", "VectorCoupling", "bits_per_dim", "glow", "glow_vector", "ops", "realnvp_image",
           "realnvp_vector"]
