"""Training tests run single-threaded (shared 2-core CI: oversubscribed OpenMP threads crawl)."""

import torch

torch.set_num_threads(1)
