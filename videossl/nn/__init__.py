"""Training building blocks below the methods: EMA teachers (``ema``), per-iteration schedules (``schedules``) and
the attentive probe's cross-attention pooler (``attentive_pooler``).

Tensor in, tensor out (or numbers in, numbers out); they import nothing of videossl's, so methods (BYOL, DINO,
MoCo) and the engine (optimizer schedules) both use them without the methods importing the engine.
"""
