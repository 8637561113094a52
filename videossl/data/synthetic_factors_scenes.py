"""Rendering of the factor dataset: one object whose appearance, motion and arrow of time are independent labels.

See :mod:`videossl.data.synthetic_factors` for the labels and the dataset on disk. Backgrounds, distractor sprites,
the sound of impacts and hums and the MP4 writer are the synthetic dataset's own
(:mod:`videossl.data.synthetic_scenes`, :mod:`videossl.data.synthetic`); what is new here is the labelled object
(8 shape + texture categories, drawn from signed distances in object coordinates), its 8 damped dynamics and its
fading trail.

How the arrow of time is made visible for every motion (the label would be undecidable for time-symmetric motion):

* a **fading trail**: every pixel the object covers keeps a glow of the object's colour that decays with a 0.25 s
  time constant (a peak-hold, ``glow[t] = max(cover[t], d * glow[t - 1])``). Played forward, a pixel lights up at
  once and fades slowly, and the trail lies behind the object; reversed, pixels brighten slowly and go dark at
  once, and the trail runs ahead of the object. Any motion that changes the object's footprint shows it.
* **dissipation** in every dynamic: bounces lose height (restitution < 1), the fall ends at rest, slides and the
  split's pieces slow down by friction, orbits spiral inward, spins slow down, pulses die away. Reversed, each gains
  energy from nowhere.
* The picture of one frame is the same either way (a reversed video holds exactly the forward video's frames), so the
  arrow is undecidable from a single frame: a frame-wise network at T=1 must stay at chance (50%) on it.
* The one weak case: a spinning disc (``disc_stripes``, ``disc_halves``) keeps its footprint, so its trail is hidden
  under it; its arrow shows only as the spin slowing down (forward) or speeding up (reversed).

Audio follows the events as in the synthetic dataset (impact tone bursts at bounces, zigzag turns, the landing and
the split; a hum for orbit, pulse and spin that follows the motion) and is reversed with the picture.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .synthetic_scenes import SAMPLE_RATE, Scene, _pitch, _random_colour, _reflect, _sprite, draw_sprite, \
    render_audio, render_background

# Alphabetical, so sorted-name readers agree with the classes.txt order.
APPEARANCES = ("cross", "disc_halves", "disc_stripes", "ring_gap", "square_checker", "square_solid", "star",
               "triangle")
MOTIONS = ("bounce", "fall_rest", "orbit", "pulse", "slide", "spin", "split", "zigzag")
ARROWS = ("forward", "reversed")
# (shape, texture) of each appearance category; colours, size and orientation are random per video
LOOKS = {"cross": ("cross", "solid"), "disc_halves": ("circle", "halves"), "disc_stripes": ("circle", "stripes"),
         "ring_gap": ("ring_gap", "solid"), "square_checker": ("square", "checker"), "square_solid": ("square", "solid"),
         "star": ("star", "solid"), "triangle": ("triangle", "solid")}
OBJECT_RADIUS = (0.16, 0.22)  # x frame size: 10-14 px at 64 px, about half of a 48 px crop across
TRAIL_TAU_S = 0.25  # the trail's decay time constant (s)
TRAIL_OPACITY = 0.7
# the synthetic set's backgrounds with their texture contrast scaled down: from scratch on 800 videos, a tiny 3D ResNet
# stayed near chance on motion with the full-contrast stripes / checkers (docs/benchmarks-factors.md)
BACKGROUND_CONTRAST = 0.35


class Motion(NamedTuple):
    """Per-frame pose of the labelled object (each ``(T,)``; one row per piece, 1 or 2 pieces) and its sounds.
    ``cx, cy``: centre (px); ``scale``: radius multiplier; ``angle``: radians; ``events``: impacts
    ``(time_s, strength, radius_px)``; ``hum``: ``(frequency_hz, amplitude (T,))`` or None."""

    cx: np.ndarray  # (P, T)
    cy: np.ndarray  # (P, T)
    scale: np.ndarray  # (P, T)
    angle: np.ndarray  # (P, T)
    events: list
    hum: tuple | None = None


# ------------------------------------------------------------------------------------------------
# The labelled object: signed distance of its shape and colour of its texture, in object coordinates
# ------------------------------------------------------------------------------------------------


def shape_distance(shape: str, u: np.ndarray, v: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Signed distance (px, < 0 inside) to the outline of ``shape`` of radius ``r`` at object coordinates ``u, v``."""
    if shape == "circle":
        return np.sqrt(u**2 + v**2) - r
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) - 0.8 * r
    if shape == "triangle":  # equilateral, circumradius 1.15 r: the largest of three half-plane distances
        normals = [(np.cos(a), np.sin(a)) for a in (np.pi / 2, np.pi / 2 + 2 * np.pi / 3, np.pi / 2 + 4 * np.pi / 3)]
        return np.max([u * nx + v * ny for nx, ny in normals], axis=0) - 0.575 * r
    if shape == "cross":  # a plus sign: the nearer of two bars
        return np.minimum(np.maximum(np.abs(u) - r, np.abs(v) - 0.33 * r), np.maximum(np.abs(v) - r, np.abs(u) - 0.33 * r))
    if shape == "ring_gap":  # a thick ring with a slot on its +u side (a "C")
        ring = np.abs(np.sqrt(u**2 + v**2) - 0.68 * r) - 0.32 * r
        return np.where(u > 0, np.maximum(ring, 0.3 * r - np.abs(v)), ring)
    if shape == "star":  # five points: radius r at the tips, 0.45 r between them (approximate distance)
        theta = np.arctan2(v, u)
        return np.sqrt(u**2 + v**2) - r * (0.72 + 0.28 * np.cos(5 * theta)) * 1.05
    raise ValueError(f"unknown shape {shape!r}")


def texture_mask(texture: str, u: np.ndarray, v: np.ndarray, r: np.ndarray) -> np.ndarray | None:
    """Boolean field: True where the second colour shows; None for a solid object."""
    if texture == "solid":
        return None
    if texture == "stripes":  # period 0.7 r across the object's u axis
        return np.sin(u * (2 * np.pi / (0.7 * r))) > 0
    if texture == "halves":
        return u > 0
    if texture == "checker":
        cell = 0.55 * r
        return (np.floor(u / cell) + np.floor(v / cell)) % 2 > 0
    raise ValueError(f"unknown texture {texture!r}")


def object_layer(category: str, radius: float, motion: Motion, xs: np.ndarray, ys: np.ndarray,
                 colours: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Coverage ``(T, S, S)`` in [0, 1] (anti-aliased) and colour ``(T, S, S, 3)`` of the object's pieces."""
    shape, texture = LOOKS[category]
    cover, colour = None, None
    for p in range(motion.cx.shape[0]):
        u0 = xs[None] - motion.cx[p][:, None, None]
        v0 = ys[None] - motion.cy[p][:, None, None]
        cos, sin = np.cos(motion.angle[p])[:, None, None], np.sin(motion.angle[p])[:, None, None]
        u, v = u0 * cos + v0 * sin, -u0 * sin + v0 * cos
        r = (radius * motion.scale[p])[:, None, None]
        piece = np.clip(0.5 - shape_distance(shape, u, v, r), 0.0, 1.0)
        mask = texture_mask(texture, u, v, r)
        piece_colour = np.broadcast_to(colours[0], piece.shape + (3,)) if mask is None else \
            np.where(mask[..., None], colours[1], colours[0])
        if cover is None:
            cover, colour = piece, np.array(piece_colour, dtype=np.float32)
        else:  # the later piece on top
            colour = np.where((piece > cover)[..., None], piece_colour, colour)
            cover = np.maximum(cover, piece)
    return cover.astype(np.float32), colour.astype(np.float32)


def trail(cover: np.ndarray, fps: int) -> np.ndarray:
    """Peak-hold glow ``(T, S, S)``: ``glow[t] = max(cover[t], d * glow[t-1])``, ``d = exp(-1 / (fps * tau))``."""
    decay = float(np.exp(-1.0 / (fps * TRAIL_TAU_S)))
    glow = np.empty_like(cover)
    glow[0] = cover[0]
    for t in range(1, len(cover)):
        glow[t] = np.maximum(cover[t], decay * glow[t - 1])
    return glow


# ------------------------------------------------------------------------------------------------
# The 8 dynamics (times in s, positions in px); each dissipates energy, so forward and reversed differ
# ------------------------------------------------------------------------------------------------


def _one(cx, cy, scale=1.0, angle=0.0) -> tuple:
    n = max(np.size(a) for a in (cx, cy, scale, angle))
    row = lambda a: np.broadcast_to(np.asarray(a, np.float64), (n,))[None]  # noqa: E731
    return row(cx), row(cy), row(scale), row(angle)


def motion_bounce(rng, t, size, radius, angle) -> Motion:
    """A ball under gravity bouncing on a floor, losing height at each bounce (restitution 0.7-0.85)."""
    floor, gravity = size * rng.uniform(0.8, 0.88) - radius, size * rng.uniform(3.0, 4.5)
    y, vy = size * rng.uniform(0.12, 0.3), size * rng.uniform(-0.4, 0.2)
    x0, vx, restitution = rng.uniform(radius, size - radius), size * rng.uniform(-0.3, 0.3), rng.uniform(0.7, 0.85)
    dt, now, ys, events = (t[1] - t[0]) / 8, 0.0, [], []
    for frame_time in t:
        while now < frame_time:
            vy += gravity * dt
            y += vy * dt
            if y >= floor and vy > 0:
                events.append((now, min(1.0, vy / (size * 2.5)), radius))
                y, vy = floor, -vy * restitution
            now += dt
        ys.append(min(y, floor))
    x = _reflect(x0 + vx * t, radius, size - radius)
    return Motion(*_one(x, np.array(ys), 1.0, angle), events)


def motion_fall_rest(rng, t, size, radius, angle) -> Motion:
    """Falls from rest, lands without bouncing near the middle of the video, slides briefly and stays still."""
    floor, top = size * rng.uniform(0.8, 0.88) - radius, size * rng.uniform(0.12, 0.25)
    start, land = rng.uniform(0.0, 0.15) * t[-1], rng.uniform(0.45, 0.6) * t[-1]
    gravity = 2 * (floor - top) / (land - start) ** 2
    fall = np.clip(t - start, 0, land - start)
    y = top + 0.5 * gravity * fall**2
    vx, slide_tau = size * rng.uniform(-0.3, 0.3), 0.15
    # horizontal drift while falling; after landing, friction stops it within ~0.3 s
    x = rng.uniform(0.25, 0.75) * size + vx * np.minimum(t, land) + vx * slide_tau * (
        1 - np.exp(-np.clip(t - land, 0, None) / slide_tau))
    return Motion(*_one(_reflect(x, radius, size - radius), y, 1.0, angle), [(float(land), 1.0, radius)])


def motion_orbit(rng, t, size, radius, angle) -> Motion:
    """Circles a centre, spiralling inward (the orbit radius decays with a 2-4 s time constant)."""
    centre = size * (0.5 + rng.uniform(-0.05, 0.05, 2))
    span = size * rng.uniform(0.22, 0.3) * np.exp(-t / rng.uniform(2.0, 4.0))
    omega, phase = rng.choice([-1, 1]) * rng.uniform(2.5, 4.5), rng.uniform(0, 2 * np.pi)
    x, y = centre[0] + span * np.cos(omega * t + phase), centre[1] + span * np.sin(omega * t + phase)
    return Motion(*_one(x, y, 1.0, angle), [], hum=(_pitch(radius, size) * 0.3, 0.15 * span / span[0]))


def motion_zigzag(rng, t, size, radius, angle) -> Motion:
    """Crosses the frame at constant speed while its vertical motion turns sharply every half period; the zigzag's
    height shrinks (damped, 1.5-3 s time constant)."""
    vx = rng.choice([-1, 1]) * size * rng.uniform(0.25, 0.4)
    x = _reflect(rng.uniform(radius, size - radius) + vx * t, radius, size - radius)
    amp = size * rng.uniform(0.17, 0.24) * np.exp(-t / rng.uniform(1.5, 3.0))
    period, phase = rng.uniform(0.4, 0.7), rng.uniform(0, 1)
    tri = 2 * np.abs(2 * ((t / period + phase) % 1.0) - 1) - 1  # triangle wave in [-1, 1]
    turns = [(float((k - phase) * period / 2), 0.4, radius) for k in range(0, int(2 * t[-1] / period) + 3)]
    y = size * 0.5 + amp * tri
    return Motion(*_one(x, y, 1.0, angle), [e for e in turns if 0 < e[0] < t[-1]])


def motion_spin(rng, t, size, radius, angle) -> Motion:
    """Spins in place (slight drift), slowing down: omega(t) = omega0 exp(-t / tau), tau 1-2 s."""
    omega0, tau = rng.choice([-1, 1]) * rng.uniform(5.0, 9.0), rng.uniform(1.0, 2.0)
    turned = angle + omega0 * tau * (1 - np.exp(-t / tau))
    drift = size * rng.uniform(-0.04, 0.04, 2)
    x, y = size * rng.uniform(0.35, 0.65) + drift[0] * t, size * rng.uniform(0.35, 0.65) + drift[1] * t
    hum = (_pitch(radius, size) * 0.6, 0.12 * np.exp(-t / tau))
    return Motion(*_one(x, y, 1.0, turned), [], hum=hum)


def motion_pulse(rng, t, size, radius, angle) -> Motion:
    """Grows and shrinks periodically (1-2 Hz), the swing dying away (1.5-3 s time constant)."""
    freq, phase, depth = rng.uniform(1.0, 2.0), rng.uniform(0, 2 * np.pi), rng.uniform(0.35, 0.45)
    wave = depth * np.exp(-t / rng.uniform(1.5, 3.0)) * np.sin(2 * np.pi * freq * t + phase)
    drift = size * rng.uniform(-0.04, 0.04, 2)
    x, y = size * rng.uniform(0.35, 0.65) + drift[0] * t, size * rng.uniform(0.35, 0.65) + drift[1] * t
    return Motion(*_one(x, y, 1.0 + wave, angle), [], hum=(_pitch(radius, size) * 0.5, 0.12 * (1 + 2 * wave)))


def motion_slide(rng, t, size, radius, angle) -> Motion:
    """Glides in a straight line in any direction, slowed by friction (speed decays, 0.7-1.2 s time constant),
    reflecting off the frame's edges."""
    heading, speed, tau = rng.uniform(0, 2 * np.pi), size * rng.uniform(0.55, 0.8), rng.uniform(0.7, 1.2)
    travel = speed * tau * (1 - np.exp(-t / tau))
    x = _reflect(size * rng.uniform(0.25, 0.75) + np.cos(heading) * travel, radius, size - radius)
    y = _reflect(size * rng.uniform(0.25, 0.75) + np.sin(heading) * travel, radius, size - radius)
    return Motion(*_one(x, y, 1.0, angle), [])


def motion_split(rng, t, size, radius, angle) -> Motion:
    """Drifts, then breaks into two smaller copies near the middle of the video that fly apart and slow down."""
    when = rng.uniform(0.4, 0.6) * t[-1]
    start, drift = size * rng.uniform(0.35, 0.65, 2), size * rng.uniform(-0.08, 0.08, 2)
    heading, speed, tau = rng.uniform(0, np.pi), size * rng.uniform(0.5, 0.7), rng.uniform(0.4, 0.7)
    apart = speed * tau * (1 - np.exp(-np.clip(t - when, 0, None) / tau))
    scale = np.where(t < when, 1.0, 0.72)
    rows = [_one(_reflect(start[0] + drift[0] * t + sign * np.cos(heading) * apart, radius, size - radius),
                 _reflect(start[1] + drift[1] * t + sign * np.sin(heading) * apart, radius, size - radius),
                 scale, angle) for sign in (-1, 1)]
    cx, cy, sc, an = (np.concatenate(parts) for parts in zip(*rows))
    return Motion(cx, cy, sc, an, [(float(when), 0.8, radius)])


DYNAMICS = {"bounce": motion_bounce, "fall_rest": motion_fall_rest, "orbit": motion_orbit, "pulse": motion_pulse,
            "slide": motion_slide, "spin": motion_spin, "split": motion_split, "zigzag": motion_zigzag}


# ------------------------------------------------------------------------------------------------
# One video
# ------------------------------------------------------------------------------------------------


def render_factor_video(appearance: str, motion: str, arrow: str, rng: np.random.Generator, size: int = 64,
                        fps: int = 16, seconds: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 frames ``(T, S, S, 3)`` and float32 audio ``(round(T / fps * SAMPLE_RATE),)`` of one video.

    Every random draw happens before the arrow is applied, so the same ``rng`` state gives a forward video and its
    exact frame (and sample) reversal.
    """
    if appearance not in LOOKS or motion not in DYNAMICS or arrow not in ARROWS:
        raise ValueError(f"unknown factor labels ({appearance!r}, {motion!r}, {arrow!r}); appearances "
                         f"{APPEARANCES}, motions {MOTIONS}, arrows {ARROWS}")
    num_frames = max(2, int(round(seconds * fps)))
    t = np.arange(num_frames, dtype=np.float64) / fps
    background = render_background(rng, size)
    background_mean = background.reshape(-1, 3).mean(0)
    background = background_mean + BACKGROUND_CONTRAST * (background - background_mean)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    canvas = np.repeat(background[None], num_frames, axis=0)
    bg_mean = background_mean
    for _ in range(int(rng.integers(0, 3))):  # distractors: small plain discs / squares drifting slowly
        start, drift = size * rng.uniform(0.05, 0.95, 2), size * rng.uniform(-0.08, 0.08, 2)
        look = (str(rng.choice(["circle", "square"])), _random_colour(rng, bg_mean), None, 1.0)
        draw_sprite(canvas, _sprite(look, start[0] + drift[0] * t, start[1] + drift[1] * t,
                                    size * rng.uniform(0.035, 0.06), angle=rng.uniform(0, np.pi)), xs, ys)
    radius = size * rng.uniform(*OBJECT_RADIUS)
    colour = _random_colour(rng, bg_mean)
    colours = (colour, _random_colour(rng, colour))
    pose = DYNAMICS[motion](rng, t, size, radius, rng.uniform(0, 2 * np.pi))
    cover, paint = object_layer(appearance, radius, pose, xs, ys, colours)
    glow = TRAIL_OPACITY * trail(cover, fps)[..., None]
    canvas += glow * (colour - canvas)
    canvas += cover[..., None] * (paint - canvas)
    canvas += rng.normal(0, rng.uniform(1, 3), canvas.shape).astype(np.float32)  # sensor noise
    frames = np.clip(canvas, 0, 255).astype(np.uint8)
    audio = render_audio(Scene([], pose.events, hum=pose.hum), rng, num_frames / fps, size, fps)
    if arrow == "reversed":
        frames, audio = np.ascontiguousarray(frames[::-1]), np.ascontiguousarray(audio[::-1])
    return frames, audio


__all__ = ["APPEARANCES", "MOTIONS", "ARROWS", "LOOKS", "DYNAMICS", "SAMPLE_RATE", "render_factor_video"]
