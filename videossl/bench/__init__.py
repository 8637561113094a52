"""Benchmarks: data pipeline (``data``), training step (``train``) and learning (``learn``)."""
