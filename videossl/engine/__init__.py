"""The training engine: loop, optimizers, schedules, EMA, checkpoints, logging."""
