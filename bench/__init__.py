"""rclrec-bench: a reproducibility harness for RCLRec (arXiv 2603.28124) and its baselines."""

# First, before anything imports numpy: the semantic IDs are fitted on one OpenBLAS kernel (bench.blas).
from bench import blas as _blas

_blas.pin()

__version__ = "0.1.0"
