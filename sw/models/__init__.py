"""Offline datasets, the models the pruning toolkit works on, and seeded CPU training.

``sw.models.data`` needs only NumPy; ``mlp``, ``cnn`` and ``train`` import torch.
"""
