"""Domain library for the offshoring pipeline.

Readers, schemas, geography, the district procedure, spells, estimators, the
synthetic-data generator and report rendering. Never imports Dagster, so every
piece can be tested and reused from a notebook on its own.
"""

import os as _os

__version__ = "0.1.0"

# One BLAS thread unless the user chose otherwise. The library's matrix products have
# a few dozen columns and gain nothing from threads, while OpenBLAS threads spinning
# against other busy processes on a shared two-core machine made the same 100,000 x 26
# Gram product take 3 s instead of 15 ms (measured), and the whole pipeline 1.6 times
# as long. Set before numpy is first imported, so it holds for the pipeline's process
# and every process it starts; a user's own OPENBLAS_NUM_THREADS (or MKL_NUM_THREADS)
# is left as it is.
BLAS_THREADS_DEFAULT = "1"
for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    _os.environ.setdefault(_var, BLAS_THREADS_DEFAULT)
del _var
