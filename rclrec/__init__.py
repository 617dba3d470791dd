"""RCLRec: reverse-curriculum learning for sparse conversions (arXiv 2603.28124)."""
