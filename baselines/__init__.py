"""Baseline recommenders, one per file, each registered by a YAML file in ``configs/models/``."""
