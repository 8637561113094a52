"""Training building blocks below the methods: EMA teachers (``ema``) and per-iteration schedules (``schedules``).

Tensor in, tensor out (or numbers in, numbers out); they import nothing of videossl's, so methods (BYOL, DINO,
MoCo) and the engine (optimizer schedules) both use them without the methods importing the engine.
"""
