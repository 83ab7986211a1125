"""Gaussian variational autoencoders: the three-entropy sum on numpy arrays, and the linear VAE.

``EntropySumAccumulator`` and ``entropy_sum`` compute a VAE's ELBO and its entropy sum (Damm et al.) from the
arrays a training step already has, over mini-batches; ``LinearVAE`` is the estimator fitted in closed form.
``entrosum.torch`` adapts the accumulator to a PyTorch training loop.
"""

from .entropy_sum import DECODER_VARIANCES, EntropySumAccumulator, entropy_sum
from .linear_vae import LinearVAE

__all__ = ["DECODER_VARIANCES", "EntropySumAccumulator", "LinearVAE", "entropy_sum"]
