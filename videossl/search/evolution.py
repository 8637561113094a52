"""A small (mu + lambda) evolution strategy over positive loss weights, stateless between generations.

ELo (Piergiovanni et al., CVPR 2020, sec. 3.2) evolves the loss weights with tournament selection and CMA-ES. Here:
generation 0 is the starting candidate (the recipe's weights; equal weights for the shipped recipe) plus ``lambda - 1``
log-normal draws around it; every later generation
draws ``lambda`` children, each from a parent chosen by a tournament of ``tournament`` among the ``mu`` best
candidates evaluated so far (elitism: the best survive across generations without being retrained), mutated
log-normally per weight (``w * exp(sigma * N(0, 1))``, the classic self-adaptation-free ES mutation for positive
parameters; Schwefel 1981).

A generation is a pure function of ``(seed, generation, every earlier candidate and its fitness)``, so a search
rebuilt from its CSV log continues exactly where it stopped.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

MIN_WEIGHT, MAX_WEIGHT = 1e-3, 1e2  # mutation keeps weights in this range (log-space clipping)


class Evaluated(NamedTuple):
    """A candidate whose fitness is known (higher is better)."""

    weights: dict[str, float]
    fitness: float


def _rng(seed: int, generation: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(generation)])


def _round(weights: dict[str, float]) -> dict[str, float]:
    """4 significant digits: readable in the CSV and the recipe, and identical when read back."""
    return {k: float(f"{min(max(v, MIN_WEIGHT), MAX_WEIGHT):.4g}") for k, v in weights.items()}


def mutate(weights: dict[str, float], sigma: float, rng: np.random.Generator) -> dict[str, float]:
    """Log-normal mutation of every weight: ``w * exp(sigma * z)``, ``z ~ N(0, 1)``."""
    return _round({k: v * float(np.exp(sigma * rng.standard_normal())) for k, v in weights.items()})


def initial_population(tasks: Sequence[str], size: int, sigma: float, seed: int,
                       start: dict[str, float] | None = None) -> list[dict[str, float]]:
    """``start`` (default: equal weights, all 1) first, then ``size - 1`` log-normal draws around it."""
    rng = _rng(seed, 0)
    centre = _round({t: float(start[t]) for t in tasks}) if start is not None else {t: 1.0 for t in tasks}
    return [centre] + [mutate(centre, sigma, rng) for _ in range(size - 1)]


def next_population(archive: Sequence[Evaluated], generation: int, size: int, mu: int, sigma: float, seed: int,
                    tournament: int = 2) -> list[dict[str, float]]:
    """``size`` children of the ``mu`` best of ``archive`` (every candidate evaluated in earlier generations)."""
    if not archive:
        raise ValueError("next_population: the archive is empty (evaluate generation 0 first)")
    rng = _rng(seed, generation)
    order = sorted(range(len(archive)), key=lambda i: (-archive[i].fitness, i))  # stable: ties keep log order
    parents = [archive[i] for i in order[:max(1, mu)]]
    children = []
    for _ in range(size):
        picks = rng.choice(len(parents), size=min(tournament, len(parents)), replace=False)
        parent = parents[int(min(picks))]  # parents are sorted best first: the lowest index wins the tournament
        children.append(mutate(parent.weights, sigma, rng))
    return children
