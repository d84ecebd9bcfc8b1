"""Offline datasets, the models the pruning toolkit works on, and seeded CPU training.

``sw.models.data`` needs only NumPy; ``mlp``, ``cnn``, ``resnet``, ``mobilenet`` and ``train`` import torch.
"""
