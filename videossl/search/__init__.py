"""Searches over training hyperparameters: ``videossl search elo`` evolves ELo's loss weights (``elo.py``) with an
unlabeled Zipf-prior fitness (``fitness.py``) and a small evolution strategy (``evolution.py``)."""
