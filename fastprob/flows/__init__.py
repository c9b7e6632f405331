"""Normalizing-flow building blocks with fused kernels (conventions: flows-model.md).

Blocks map data to latent: ``forward(x) -> (z, logdet)``, ``inverse(z) -> (x, logdet)``.
"""
from . import ops
from .actnorm import ActNorm
from .base import DiagonalGaussian, Flow, Split, StandardNormal, Transform
from .builders import glow, glow_vector, realnvp_image, realnvp_vector
from .compressive import CompressiveFlow, SliceStep, intermixed_flow, latent_size
from .conv1x1 import InvConv1x1
from .coupling import AffineCoupling, VectorCoupling
from .ppca import PPCAStep
from .preprocess import Logit, UniformDequantizer, VariationalDequantizer, bits_per_dim
from .vae_steps import LinearVAEStep, VAEStep
from .squeeze import ChannelSplit, Squeeze, SqueezeSplit

__all__ = ["ActNorm", "AffineCoupling", "ChannelSplit", "CompressiveFlow", "DiagonalGaussian", "Flow", "InvConv1x1", "LinearVAEStep", "Logit", "PPCAStep",
           "SliceStep", "Split", "Squeeze", "SqueezeSplit", "StandardNormal", "Transform", "UniformDequantizer",
           "VAEStep", "VariationalDequantizer", "VectorCoupling", "bits_per_dim", "glow", "glow_vector", "intermixed_flow", "latent_size", "ops", "realnvp_image",
           "realnvp_vector"]
