"""The schedule families as plain functions of (steps, params); the warmup is applied by
``Schedule.lr``. Decays reach ``final`` exactly at step ``total``."""

from __future__ import annotations

import math

import numpy as np

from learnlaw.errors import UserError

DECAY_SHAPES = ("linear", "cosine", "geometric", "1-sqrt")


def decay_curve(progress: np.ndarray, peak: float, final: float, shape: str) -> np.ndarray:
    """LR at decay progress p in [0, 1]: ``peak`` at p=0, ``final`` at p=1."""
    p = np.clip(progress, 0.0, 1.0)
    if shape == "linear":
        return peak + (final - peak) * p
    if shape == "cosine":
        return final + 0.5 * (peak - final) * (1.0 + np.cos(math.pi * p))
    if shape == "geometric":
        return peak * (final / peak) ** p
    if shape == "1-sqrt":
        return final + (peak - final) * (1.0 - np.sqrt(p))
    raise UserError(f"unknown decay shape {shape!r}; expected one of {', '.join(DECAY_SHAPES)}")


def _constant(s: np.ndarray, p: dict) -> np.ndarray:
    return np.full_like(s, p["peak"], dtype=float)


def _decay_from_warmup(shape: str):
    def family(s: np.ndarray, p: dict) -> np.ndarray:
        start, total = p["warmup"], p["total"]
        return decay_curve((s - start) / (total - start), p["peak"], p["final"], shape)

    return family


def wsd_decay_start(p: dict) -> int:
    """The first step of the decay phase of a WSD schedule."""
    if p.get("decay_start") is not None:
        return int(p["decay_start"])
    return round(p["total"] * (1.0 - p["decay_frac"]))


def _wsd(s: np.ndarray, p: dict) -> np.ndarray:
    start = wsd_decay_start(p)
    return decay_curve((s - start) / (p["total"] - start), p["peak"], p["final"], p["shape"])


def _multistep(s: np.ndarray, p: dict) -> np.ndarray:
    milestones = np.asarray(p["milestones"], dtype=float)
    if p.get("values") is not None:
        levels = np.array([p["peak"], *p["values"]], dtype=float)
    else:
        levels = p["peak"] * p["gamma"] ** np.arange(len(milestones) + 1)
    return levels[np.searchsorted(milestones, s, side="right")]


def _cyclic(s: np.ndarray, p: dict) -> np.ndarray:
    after = np.maximum(s - p["warmup"], 0.0)
    cycle, rewarm = p["cycle"], p["rewarmup"]
    index = np.floor(after / cycle)
    within = after - index * cycle
    ramp = np.where(index > 0, rewarm, 0)
    rising = p["final"] + (p["peak"] - p["final"]) * within / np.maximum(ramp, 1)
    progress = (within - ramp) / np.maximum(cycle - ramp, 1)
    falling = decay_curve(progress, p["peak"], p["final"], p["shape"])
    out = np.where(within < ramp, rising, falling)
    return np.where(s >= p["total"], p["final"], out)


FAMILIES = {
    "constant": _constant,
    "cosine": _decay_from_warmup("cosine"),
    "linear": _decay_from_warmup("linear"),
    "wsd": _wsd,
    "multistep": _multistep,
    "cyclic": _cyclic,
}
