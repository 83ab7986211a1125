"""Binary latents: binary sparse coding and sigmoid belief nets, with exact and truncated posteriors."""

from .binary_sparse_coding import BinarySparseCoding
from .sigmoid_belief_net import SigmoidBeliefNet

__all__ = ["BinarySparseCoding", "SigmoidBeliefNet"]
