"""One training loop for every policy (see :mod:`.trainer`); configs in :mod:`.config`.

Importing this package is cheap; ``from robolearn.training.trainer import Trainer`` loads torch.
"""
