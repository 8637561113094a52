"""Rendering of the synthetic dataset: appearance, the twelve classes' dynamics, picture and sound.

See :mod:`videossl.data.synthetic` for the classes and the dataset on disk. Everything here is numpy,
vectorised over frames: a sprite is drawn on all ``T`` frames at once from per-frame centre, size,
opacity and angle arrays.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

# Alphabetical, so the folder, UCF101 (classInd) and Kinetics (sorted labels) readers agree on label ids.
CLASSES = ("bounce", "collide", "expand", "fade_out", "fall_stop", "orbit", "oscillate", "pulse", "random_walk",
           "rotate", "split", "zigzag")
IRREVERSIBLE = frozenset({"bounce", "fall_stop", "expand", "fade_out", "split", "collide"})
SAMPLE_RATE = 16000
SHAPES = ("circle", "square", "diamond", "bar")


class Sprite(NamedTuple):
    """One moving object: per-frame centre, size, opacity and angle (each ``(T,)``, pixels/radians)."""

    cx: np.ndarray
    cy: np.ndarray
    radius: np.ndarray
    alpha: np.ndarray
    angle: np.ndarray
    shape: str
    colour: np.ndarray  # (3,) in [0, 255]
    stripe_colour: np.ndarray | None  # (3,) or None for a solid object
    stripe_freq: float  # radians per pixel across the object's local x axis


class Scene(NamedTuple):
    """What a class's dynamics produce: the sprites, impact events ``(time_s, strength, radius_px)``,
    and a hum ``(frequency_hz, per-frame amplitude (T,))`` or None, and a swoosh start time or None."""

    sprites: list[Sprite]
    events: list[tuple[float, float, float]]
    hum: tuple[float, np.ndarray] | None = None
    swoosh: float | None = None


# ------------------------------------------------------------------------------------------------
# Appearance (random per video, never tied to the class)
# ------------------------------------------------------------------------------------------------


def _random_colour(rng: np.random.Generator, away_from: np.ndarray | None = None) -> np.ndarray:
    """A random RGB colour, at least ~90 levels away from ``away_from`` so objects stay visible."""
    for _ in range(20):
        colour = rng.uniform(0, 255, 3)
        if away_from is None or np.linalg.norm(colour - away_from) > 90:
            break
    return colour.astype(np.float32)


def render_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """float32 ``(S, S, 3)``: gradient, smooth noise, stripes or checker in random colours."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size
    a, b = _random_colour(rng), _random_colour(rng)
    kind = rng.integers(4)
    if kind == 0:  # linear gradient in a random direction
        theta = rng.uniform(0, 2 * np.pi)
        mix = np.clip((xs - 0.5) * np.cos(theta) + (ys - 0.5) * np.sin(theta) + 0.5, 0, 1)
    elif kind == 1:  # smooth noise: a coarse random grid upsampled bilinearly
        cells = int(rng.integers(3, 7))
        coarse = rng.uniform(0, 1, (cells + 1, cells + 1))
        gx, gy = xs * cells, ys * cells
        x0, y0 = np.floor(gx).astype(int), np.floor(gy).astype(int)
        fx, fy = gx - x0, gy - y0
        mix = (coarse[y0, x0] * (1 - fx) * (1 - fy) + coarse[y0, x0 + 1] * fx * (1 - fy)
               + coarse[y0 + 1, x0] * (1 - fx) * fy + coarse[y0 + 1, x0 + 1] * fx * fy)
    elif kind == 2:  # soft stripes at a random angle
        theta, freq = rng.uniform(0, np.pi), rng.uniform(4, 14)
        mix = 0.5 + 0.5 * np.sin(2 * np.pi * freq * (xs * np.cos(theta) + ys * np.sin(theta)))
    else:  # checker
        cells = int(rng.integers(2, 8))
        mix = ((np.floor(xs * cells) + np.floor(ys * cells)) % 2).astype(np.float32)
    contrast = rng.uniform(0.2, 0.7)  # keep backgrounds calmer than the objects
    mix = 0.5 + (mix - 0.5) * contrast
    return (a * (1 - mix[..., None]) + b * mix[..., None]).astype(np.float32)


def _look(rng: np.random.Generator, background_mean: np.ndarray, shapes=SHAPES, striped: bool | None = None):
    shape = str(rng.choice(shapes))
    colour = _random_colour(rng, background_mean)
    striped = bool(rng.random() < 0.4) if striped is None else striped
    stripe = _random_colour(rng, colour) if striped else None
    return shape, colour, stripe, float(rng.uniform(0.6, 1.4))


def draw_sprite(canvas: np.ndarray, sprite: Sprite, xs: np.ndarray, ys: np.ndarray) -> None:
    """Alpha-composite ``sprite`` onto float ``canvas (T, S, S, 3)`` in place, anti-aliased edges."""
    u = xs[None] - sprite.cx[:, None, None]
    v = ys[None] - sprite.cy[:, None, None]
    cos, sin = np.cos(sprite.angle)[:, None, None], np.sin(sprite.angle)[:, None, None]
    ur, vr = u * cos + v * sin, -u * sin + v * cos  # object-local coordinates
    r = sprite.radius[:, None, None]
    if sprite.shape == "circle":
        dist = np.sqrt(ur**2 + vr**2) - r
    elif sprite.shape == "square":
        dist = np.maximum(np.abs(ur), np.abs(vr)) - 0.85 * r
    elif sprite.shape == "diamond":
        dist = (np.abs(ur) + np.abs(vr)) * 0.75 - 0.85 * r
    else:  # bar
        dist = np.maximum(np.abs(ur) - 1.4 * r, np.abs(vr) - 0.4 * r)
    cover = (np.clip(0.5 - dist, 0.0, 1.0) * sprite.alpha[:, None, None])[..., None]
    colour = sprite.colour
    if sprite.stripe_colour is not None:
        stripes = (np.sin(ur * sprite.stripe_freq) > 0)[..., None]
        colour = np.where(stripes, sprite.colour, sprite.stripe_colour)
    canvas += cover * (colour - canvas)


# ------------------------------------------------------------------------------------------------
# Dynamics: one function per class; times in seconds, positions in pixels
# ------------------------------------------------------------------------------------------------


def _sprite(look, cx, cy, radius, alpha=None, angle=None) -> Sprite:
    shape, colour, stripe, freq = look
    n = max(np.size(a) for a in (cx, cy, radius, alpha, angle) if a is not None)
    full = lambda value: np.broadcast_to(np.asarray(value, np.float32), (n,)).astype(np.float32)  # noqa: E731
    return Sprite(full(cx), full(cy), full(radius), full(1.0 if alpha is None else alpha),
                  full(0.0 if angle is None else angle), shape, colour, stripe, freq)


def _reflect(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Fold positions back into ``[lo, hi]`` like a ball bouncing off walls (elastic)."""
    span = max(hi - lo, 1e-6)
    phase = np.mod(x - lo, 2 * span)
    return lo + np.where(phase > span, 2 * span - phase, phase)


def _fall(rng, t, size, radius, restitution: float, friction: float):
    """Gravity drop onto a floor with coefficient of restitution; returns x, y and impact events.
    Integrated with 8 sub-steps per frame so impact times are accurate to ~1/(8 fps)."""
    floor = size * rng.uniform(0.8, 0.95) - radius
    x, y = rng.uniform(radius, size - radius), size * rng.uniform(0.05, 0.3)
    vx, vy = size * rng.uniform(-0.3, 0.3), size * rng.uniform(-0.2, 0.1)
    gravity = size * rng.uniform(2.5, 4.5)  # px/s^2: a fall of ~0.6 S takes ~0.5 s
    start = rng.uniform(0.0, 0.4)
    dt = (t[1] - t[0]) / 8 if len(t) > 1 else 0.01
    xs, ys, events, now = [], [], [], 0.0
    for frame_time in t:
        while now < frame_time:
            if now >= start:
                vy += gravity * dt
                y += vy * dt
                if y >= floor and vy > 0:
                    strength = min(1.0, vy / (size * 2.5))
                    if strength > 0.05:
                        events.append((now, strength, radius))
                    y, vy = floor, -vy * restitution
                    vx *= friction
                    if abs(vy) < size * 0.15:  # too slow to bounce again: rest on the floor
                        vy = 0.0
                        gravity = gravity if restitution > 0 else 0.0
                if vy == 0.0 and y >= floor:
                    gravity, vx = 0.0, vx * (1 - 4 * dt)  # rolling/sliding to a stop
            x += vx * dt
            now += dt
        xs.append(x)
        ys.append(min(y, floor))
    return _reflect(np.array(xs), radius, size - radius), np.array(ys), events


def scene_bounce(rng, t, size, look) -> Scene:
    radius = size * rng.uniform(0.06, 0.12)
    x, y, events = _fall(rng, t, size, radius, restitution=rng.uniform(0.55, 0.8), friction=0.9)
    return Scene([_sprite(look(), x, y, radius)], events)


def scene_fall_stop(rng, t, size, look) -> Scene:
    radius = size * rng.uniform(0.06, 0.12)
    x, y, events = _fall(rng, t, size, radius, restitution=0.0, friction=0.6)
    return Scene([_sprite(look(), x, y, radius)], events[:1])


def scene_orbit(rng, t, size, look) -> Scene:
    radius = size * rng.uniform(0.05, 0.1)
    centre = size * (0.5 + rng.uniform(-0.08, 0.08, 2))
    span, omega = size * rng.uniform(0.18, 0.3), rng.choice([-1, 1]) * rng.uniform(1.5, 4.0)
    phase = rng.uniform(0, 2 * np.pi)
    x, y = centre[0] + span * np.cos(omega * t + phase), centre[1] + span * np.sin(omega * t + phase)
    return Scene([_sprite(look(), x, y, radius)], [], hum=(_pitch(radius, size) * 0.3, np.full(len(t), 0.15)))


def scene_zigzag(rng, t, size, look) -> Scene:
    radius = size * rng.uniform(0.05, 0.1)
    vx = rng.choice([-1, 1]) * size * rng.uniform(0.2, 0.45)
    x = _reflect(rng.uniform(radius, size - radius) + vx * t, radius, size - radius)
    amp, period = size * rng.uniform(0.12, 0.25), rng.uniform(0.4, 0.8)
    centre, phase = size * rng.uniform(0.35, 0.65), rng.uniform(0, 1)
    tri = 2 * np.abs(2 * ((t / period + phase) % 1.0) - 1) - 1  # triangle wave in [-1, 1]
    turns = [(float(k * period / 2 - phase * period), 0.35, radius) for k in range(-2, int(2 * t[-1] / period) + 3)]
    turns = [e for e in turns if 0 < e[0] < t[-1]]  # the vertical direction flips every half period
    return Scene([_sprite(look(), x, centre + amp * tri, radius)], turns)


def scene_pulse(rng, t, size, look) -> Scene:
    base = size * rng.uniform(0.07, 0.13)
    freq, phase = rng.uniform(0.8, 1.8), rng.uniform(0, 2 * np.pi)
    wave = np.sin(2 * np.pi * freq * t + phase)
    drift = size * rng.uniform(-0.05, 0.05, 2)
    x = size * rng.uniform(0.3, 0.7) + drift[0] * t
    y = size * rng.uniform(0.3, 0.7) + drift[1] * t
    return Scene([_sprite(look(), x, y, base * (1 + 0.45 * wave))], [],
                 hum=(_pitch(base, size) * 0.5, 0.12 * (1 + wave)))


def scene_expand(rng, t, size, look) -> Scene:
    start, tau = rng.uniform(0.0, 0.5), rng.uniform(0.4, 1.0)
    grow = 1 - np.exp(-np.clip(t - start, 0, None) / tau)
    r0, r1 = size * rng.uniform(0.03, 0.06), size * rng.uniform(0.3, 0.45)
    radius = r0 + (r1 - r0) * grow
    alpha = np.clip((r0 / radius) ** 0.6, 0.15, 1.0)  # the same "ink" spread thinner
    x, y = size * rng.uniform(0.3, 0.7), size * rng.uniform(0.3, 0.7)
    return Scene([_sprite(look(), x, y, radius, alpha=alpha)], [], swoosh=float(start))


def scene_fade_out(rng, t, size, look) -> Scene:
    radius = size * rng.uniform(0.07, 0.13)
    start, tau = rng.uniform(0.2, 0.4) * t[-1], rng.uniform(0.3, 0.8)
    alpha = np.exp(-np.clip(t - start, 0, None) / tau)
    v = size * rng.uniform(-0.1, 0.1, 2)
    x, y = size * rng.uniform(0.3, 0.7) + v[0] * t, size * rng.uniform(0.3, 0.7) + v[1] * t
    return Scene([_sprite(look(), x, y, radius, alpha=alpha)], [], hum=(_pitch(radius, size) * 0.4, 0.2 * alpha))


def scene_split(rng, t, size, look) -> Scene:
    radius = size * rng.uniform(0.08, 0.13)
    when = rng.uniform(0.25, 0.5) * t[-1]
    x0, y0 = size * rng.uniform(0.35, 0.65, 2)
    v = size * rng.uniform(-0.1, 0.1, 2)
    theta, speed = rng.uniform(0, np.pi), size * rng.uniform(0.25, 0.45)
    after = np.clip(t - when, 0, None)
    cx, cy = x0 + v[0] * t, y0 + v[1] * t
    half = np.where(t < when, radius, radius / np.sqrt(2))
    appearance = look()
    sprites = [_sprite(appearance, cx + sign * speed * np.cos(theta) * after,
                       cy + sign * speed * np.sin(theta) * after, half) for sign in (-1, 1)]
    return Scene(sprites, [(float(when), 0.8, radius)])


def scene_collide(rng, t, size, look) -> Scene:
    radius = size * rng.uniform(0.06, 0.1)
    when = rng.uniform(0.3, 0.55) * t[-1]
    theta = rng.uniform(-0.4, 0.4) + rng.choice([0, np.pi / 2])
    direction = np.array([np.cos(theta), np.sin(theta)])
    meet = size * rng.uniform(0.4, 0.6, 2)
    speed, restitution = size * rng.uniform(0.25, 0.45), rng.uniform(0.3, 0.6)
    # before the meeting each moves towards it at `speed`; after, both rebound at restitution * speed
    travel = np.where(t < when, (when - t) * speed, (t - when) * speed * restitution) + radius
    sprites = [_sprite(look(), meet[0] + sign * direction[0] * travel, meet[1] + sign * direction[1] * travel, radius)
               for sign in (-1, 1)]
    return Scene(sprites, [(float(when), 0.9, radius)])


def scene_rotate(rng, t, size, look) -> Scene:
    radius = size * rng.uniform(0.1, 0.16)
    omega, phase = rng.choice([-1, 1]) * rng.uniform(2.0, 5.0), rng.uniform(0, np.pi)
    x, y = size * rng.uniform(0.3, 0.7, 2)
    return Scene([_sprite(look(shapes=("bar", "square", "diamond"), striped=True), x, y, radius,
                          angle=phase + omega * t)], [])


def scene_oscillate(rng, t, size, look) -> Scene:
    radius = size * rng.uniform(0.05, 0.1)
    pivot = np.array([size * rng.uniform(0.3, 0.7), size * rng.uniform(-0.1, 0.2)])
    length, amp = size * rng.uniform(0.4, 0.6), rng.uniform(0.4, 0.9)
    period, phase = rng.uniform(0.8, 1.6), rng.uniform(0, 2 * np.pi)
    angle = amp * np.cos(2 * np.pi * t / period + phase)  # small-angle pendulum, no damping
    return Scene([_sprite(look(), pivot[0] + length * np.sin(angle), pivot[1] + length * np.cos(angle), radius)], [])


def scene_random_walk(rng, t, size, look) -> Scene:
    radius = size * rng.uniform(0.05, 0.1)
    dt = t[1] - t[0] if len(t) > 1 else 0.1
    # Ornstein-Uhlenbeck velocity: smooth random turns, speeds like the other classes
    velocity, speed = np.zeros(2), size * rng.uniform(0.3, 0.6)
    position, path = size * rng.uniform(0.3, 0.7, 2), []
    for _ in t:
        velocity += -velocity * 2.0 * dt + speed * np.sqrt(4.0 * dt) * rng.standard_normal(2)
        position = position + velocity * dt
        path.append(position.copy())
    path = np.array(path)
    return Scene([_sprite(look(), _reflect(path[:, 0], radius, size - radius),
                          _reflect(path[:, 1], radius, size - radius), radius)], [])


SCENES = {
    "bounce": scene_bounce, "fall_stop": scene_fall_stop, "orbit": scene_orbit, "zigzag": scene_zigzag,
    "pulse": scene_pulse, "expand": scene_expand, "fade_out": scene_fade_out, "split": scene_split,
    "collide": scene_collide, "rotate": scene_rotate, "oscillate": scene_oscillate,
    "random_walk": scene_random_walk,
}


def _pitch(radius: float, size: int) -> float:
    """Impact pitch (Hz): small objects ring high, large ones low (300-2600 Hz)."""
    relative = (radius / size - 0.03) / 0.14
    return float(np.clip(2600 - 2300 * relative, 300, 2600))


# ------------------------------------------------------------------------------------------------
# One video: picture + sound
# ------------------------------------------------------------------------------------------------


def render_video(label: str, rng: np.random.Generator, size: int = 64, fps: int = 16,
                 seconds: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """One video of class ``label``: uint8 frames ``(T, S, S, 3)`` and float32 audio ``(samples,)`` at
    ``SAMPLE_RATE``, both exactly ``T / fps`` seconds long."""
    if label not in SCENES:
        raise ValueError(f"unknown synthetic class {label!r}; classes: {', '.join(CLASSES)}")
    num_frames = max(2, int(round(seconds * fps)))
    t = np.arange(num_frames, dtype=np.float64) / fps
    background = render_background(rng, size)
    bg_mean = background.reshape(-1, 3).mean(0)
    look = lambda shapes=SHAPES, striped=None: _look(rng, bg_mean, shapes, striped)  # noqa: E731
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    canvas = np.repeat(background[None], num_frames, axis=0)
    for _ in range(int(rng.integers(0, 4))):  # distractors: slow drift, same for every class
        radius = size * rng.uniform(0.03, 0.08)
        start, drift = size * rng.uniform(0, 1, 2), size * rng.uniform(-0.08, 0.08, 2)
        draw_sprite(canvas, _sprite(look(), start[0] + drift[0] * t, start[1] + drift[1] * t, radius,
                                    angle=rng.uniform(0, np.pi)), xs, ys)
    scene = SCENES[label](rng, t, size, look)
    for sprite in scene.sprites:
        if sprite.shape != "circle" and label != "rotate":
            sprite = sprite._replace(angle=sprite.angle + np.float32(rng.uniform(0, np.pi)))
        draw_sprite(canvas, sprite, xs, ys)
    canvas += rng.normal(0, rng.uniform(1, 4), canvas.shape).astype(np.float32)  # sensor noise
    frames = np.clip(canvas, 0, 255).astype(np.uint8)
    return frames, render_audio(scene, rng, num_frames / fps, size, fps)


def render_audio(scene: Scene, rng: np.random.Generator, seconds: float, size: int, fps: int) -> np.ndarray:
    """float32 ``(round(seconds * SAMPLE_RATE),)``: noise floor + tone bursts at impacts + hum/swoosh."""
    n = int(round(seconds * SAMPLE_RATE))
    t = np.arange(n) / SAMPLE_RATE
    wave = rng.normal(0, rng.uniform(0.002, 0.01), n)
    burst = np.arange(int(0.15 * SAMPLE_RATE)) / SAMPLE_RATE
    envelope = np.exp(-burst / 0.04)  # 40 ms decay: a "tock"
    for when, strength, radius in scene.events:
        pitch = _pitch(radius, size)
        start = int(round(when * SAMPLE_RATE))
        if start >= n:
            continue
        tone = strength * 0.6 * envelope * (np.sin(2 * np.pi * pitch * burst) + 0.3 * np.sin(4 * np.pi * pitch * burst))
        stop = min(n, start + len(tone))
        wave[start:stop] += tone[: stop - start]
    if scene.hum is not None:
        frequency, amplitude = scene.hum
        per_sample = np.interp(t, np.arange(len(amplitude)) / fps, amplitude)
        wave += per_sample * np.sin(2 * np.pi * frequency * t + rng.uniform(0, 2 * np.pi))
    if scene.swoosh is not None:
        start = int(scene.swoosh * SAMPLE_RATE)
        length = n - start
        noise = np.convolve(rng.normal(0, 1, length), np.ones(8) / 8, mode="same")  # soft low-passed noise
        wave[start:] += 0.3 * noise * np.exp(-np.arange(length) / (0.5 * SAMPLE_RATE))
    peak = np.abs(wave).max()
    if peak > 0.9:
        wave *= 0.9 / peak
    return wave.astype(np.float32)
