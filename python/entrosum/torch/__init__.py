"""PyTorch adapter (optional: ``pip install "entrosum[torch]"``): a VAE training monitor and entropy-based objectives.

``EntropySumMonitor`` turns the tensors of a VAE's training step into the per-epoch ELBO, three-entropy sum, its
terms and the gap, in the ``ConvergenceMonitor`` every entrosum model has; ``elbo`` and ``entropy_objective`` are
differentiable objectives to train with. Importing this module does not import torch; using it does, and says how to
install torch when it is missing.
"""

from .monitor import EntropySumMonitor, elbo, entropy_objective

__all__ = ["EntropySumMonitor", "elbo", "entropy_objective"]
