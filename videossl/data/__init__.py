"""Data: decoders, clip samplers, dataset readers, the synthetic dataset and the loaders."""
