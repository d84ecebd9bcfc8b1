"""Pruning toolkit: criteria, granularities and a pruner over ordinary ``nn.Module``s; sensitivity
scans, fine-tuning schedules, regularisation and network slimming, k-means weight sharing and
integer export into the EIE format (``sw.pack.pack_eie``).

Submodules import torch; import them directly (``from sw.prune.pruner import Pruner``).
"""
