"""sparsehw software: pruning, packing into hardware memory images, cycle models and the CLI.

Importing ``sw`` is cheap: subpackages that need torch import it themselves.
"""
