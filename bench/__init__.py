"""rclrec-bench: a reproducibility harness for RCLRec (arXiv 2603.28124) and its baselines."""

__version__ = "0.1.0"
