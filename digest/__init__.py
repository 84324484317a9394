"""digest: a daily email digest of trending research papers, ranked for each subscriber."""

import os

# Our matrix products are small (a reader's model: a few dozen papers) and digest runs its own worker
# processes: BLAS threads only spin. One thread made a 30×1500 product 10× faster on a busy 2-core machine
# (635 → 62 µs). Set before numpy is first imported; an operator's own setting wins.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

__version__ = "0.1.0"
