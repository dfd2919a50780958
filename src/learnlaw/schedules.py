"""Learning-rate schedules: the per-step learning rate for steps 0..S-1.

A schedule is built from a compact spec string, for example

    wsd:peak=3e-4,final=3e-5,warmup=2160,total=24000,decay_start=20000,shape=geometric

from a per-step array, or from sparse logged ``(step, lr)`` points. Every family can sit
behind a linear warmup from 0 (``warmup=W``: lr(s) = peak * s / W for s < W). Decays reach
``final`` exactly at step ``total``; steps at or past ``total`` hold ``final``.

Families and their keys (lists are separated by ``/``):

- ``constant``: peak [, warmup, total]
- ``cosine``: peak, total [, final=0, warmup]
- ``linear``: peak, total [, final=0, warmup]
- ``wsd``: peak, total, decay_start or decay_frac (fraction of total) [, final=0, warmup,
  shape=linear|cosine|geometric|1-sqrt]
- ``multistep``: peak, milestones=s1/s2/.., values=lr1/lr2/.. or gamma=factor [, warmup, total]
- ``cyclic``: peak, cycle, total [, final=0, warmup, rewarmup=0, shape=cosine|linear]:
  cycles of ``cycle`` steps after the warmup; each later cycle re-warms from final to peak over
  ``rewarmup`` steps, then decays to final by the cycle's end.
- ``csv``: path=FILE [, warmup=W] with columns step,lr (sparse points, linearly interpolated;
  the warmup is detected from the LR unless given)
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from learnlaw.errors import UserError
from learnlaw.io import read_table

DECAY_SHAPES = ("linear", "cosine", "geometric", "1-sqrt")

# kind -> (required keys, optional keys with defaults)
_KEYS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "constant": (("peak",), {"warmup": 0, "total": None}),
    "cosine": (("peak", "total"), {"final": 0.0, "warmup": 0}),
    "linear": (("peak", "total"), {"final": 0.0, "warmup": 0}),
    "wsd": (
        ("peak", "total"),
        {"final": 0.0, "warmup": 0, "decay_start": None, "decay_frac": None, "shape": "linear"},
    ),
    "multistep": (
        ("peak", "milestones"),
        {"values": None, "gamma": None, "warmup": 0, "total": None},
    ),
    "cyclic": (
        ("peak", "cycle", "total"),
        {"final": 0.0, "warmup": 0, "rewarmup": 0, "shape": "cosine"},
    ),
}
_INT_KEYS = {"warmup", "total", "decay_start", "cycle", "rewarmup"}
_LIST_KEYS = {"milestones", "values"}
_STR_KEYS = {"shape"}


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


@dataclass(frozen=True)
class Schedule:
    """A learning-rate schedule. Call ``lr(steps)`` or ``values(n)`` for per-step rates.

    ``kind`` is a family name (with ``params``) or ``"points"`` (sparse ``(step, lr)`` points,
    linearly interpolated, holding the first value before the first point and the last after).
    """

    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    point_steps: np.ndarray | None = None
    point_lrs: np.ndarray | None = None

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def from_array(cls, lrs: np.ndarray, warmup: int | None = None) -> Schedule:
        """A schedule whose step s has learning rate ``lrs[s]`` (the last value after the end)."""
        lrs = np.asarray(lrs, dtype=float)
        if lrs.ndim != 1 or len(lrs) == 0:
            raise UserError("a per-step learning-rate array must be one-dimensional and non-empty")
        return cls.from_points(np.arange(len(lrs)), lrs, warmup)

    @classmethod
    def from_points(cls, steps: np.ndarray, lrs: np.ndarray, warmup: int | None = None) -> Schedule:
        """Linear interpolation between logged ``(step, lr)`` points.

        ``warmup`` is the length of the initial linear warmup; None detects it from the LR."""
        steps = np.asarray(steps, dtype=float)
        lrs = np.asarray(lrs, dtype=float)
        if len(steps) == 0 or steps.shape != lrs.shape:
            raise UserError("learning-rate points need equally many steps and values, at least one")
        if not (np.all(np.isfinite(lrs)) and np.all(np.isfinite(steps))):
            raise UserError("learning-rate points contain NaN or infinite steps or values")
        order = np.argsort(steps, kind="stable")
        steps, lrs = steps[order], lrs[order]
        if warmup is None:
            warmup = detect_warmup(lrs, steps)
        return cls("points", {"warmup": int(warmup)}, steps, lrs)

    @classmethod
    def parse(cls, spec: str) -> Schedule:
        """A schedule from its spec string, e.g. ``"wsd:peak=3e-4,total=24000,decay_frac=0.2"``."""
        return parse_schedule(spec)

    # Typed constructors: the keys of the spec strings, validated the same way.
    @classmethod
    def constant(cls, peak: float, *, warmup: int = 0, total: int | None = None) -> Schedule:
        return cls._build("constant", peak=peak, warmup=warmup, total=total)

    @classmethod
    def cosine(cls, peak: float, total: int, *, final: float = 0.0, warmup: int = 0) -> Schedule:
        return cls._build("cosine", peak=peak, total=total, final=final, warmup=warmup)

    @classmethod
    def linear(cls, peak: float, total: int, *, final: float = 0.0, warmup: int = 0) -> Schedule:
        return cls._build("linear", peak=peak, total=total, final=final, warmup=warmup)

    @classmethod
    def wsd(
        cls,
        peak: float,
        total: int,
        *,
        decay_frac: float | None = None,
        decay_start: int | None = None,
        final: float = 0.0,
        warmup: int = 0,
        shape: str = "linear",
    ) -> Schedule:
        """Warmup, stable at ``peak``, then a decay to ``final`` over the last ``decay_frac`` of
        ``total`` steps (or from step ``decay_start``)."""
        return cls._build(
            "wsd",
            peak=peak,
            total=total,
            final=final,
            warmup=warmup,
            decay_start=decay_start,
            decay_frac=decay_frac,
            shape=shape,
        )

    @classmethod
    def multistep(
        cls,
        peak: float,
        milestones: list[int],
        *,
        values: list[float] | None = None,
        gamma: float | None = None,
        warmup: int = 0,
        total: int | None = None,
    ) -> Schedule:
        return cls._build(
            "multistep",
            peak=peak,
            milestones=milestones,
            values=values,
            gamma=gamma,
            warmup=warmup,
            total=total,
        )

    @classmethod
    def cyclic(
        cls,
        peak: float,
        cycle: int,
        total: int,
        *,
        final: float = 0.0,
        warmup: int = 0,
        rewarmup: int = 0,
        shape: str = "cosine",
    ) -> Schedule:
        return cls._build(
            "cyclic",
            peak=peak,
            cycle=cycle,
            total=total,
            final=final,
            warmup=warmup,
            rewarmup=rewarmup,
            shape=shape,
        )

    @classmethod
    def _build(cls, kind: str, **given: Any) -> Schedule:
        """Check the values as a spec string's would be (types, ranges), then build."""
        required, optional = _KEYS[kind]
        params: dict[str, Any] = {}
        for key in (*required, *optional):
            value = given.get(key, optional.get(key))
            if value is not None:
                value = _typed_value(kind, key, value)
            params[key] = value
        _validate(f"{kind} schedule", kind, params, prefix=False)
        return cls(kind, params)

    # ---- evaluation ---------------------------------------------------------------------
    def lr(self, steps: np.ndarray | int) -> np.ndarray:
        """Learning rate at the given integer steps."""
        s = np.asarray(steps, dtype=float)
        if self.kind == "points":
            return np.interp(s, self.point_steps, self.point_lrs)
        p = self.params
        out = _FAMILIES[self.kind](s, p)
        warmup = p.get("warmup", 0) or 0
        if warmup > 0:
            out = np.where(s < warmup, p["peak"] * s / warmup, out)
        return out

    def values(self, n: int) -> np.ndarray:
        """Learning rates for steps 0..n-1."""
        return self.lr(np.arange(n))

    @property
    def warmup(self) -> int:
        return int(self.params.get("warmup", 0) or 0)

    @property
    def total(self) -> int | None:
        if self.kind == "points":
            return int(self.point_steps[-1]) + 1
        t = self.params.get("total")
        return None if t is None else int(t)

    # ---- text form ----------------------------------------------------------------------
    def spec(self) -> str:
        """The spec string this schedule parses from (not available for point schedules)."""
        if self.kind == "points":
            raise ValueError("a point schedule has no spec string")
        parts = []
        for key, value in self.params.items():
            if value is None:
                continue
            if isinstance(value, (list, tuple)):
                value = "/".join(_fmt(v) for v in value)
            parts.append(f"{key}={_fmt(value)}")
        return f"{self.kind}:" + ",".join(parts)

    def to_json(self) -> dict[str, Any]:
        if self.kind == "points":
            return {
                "points": {
                    "steps": self.point_steps.tolist(),
                    "lrs": self.point_lrs.tolist(),
                    "warmup": self.warmup,
                }
            }
        return {"spec": self.spec()}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Schedule:
        if "spec" in obj:
            return parse_schedule(obj["spec"])
        points = obj["points"]
        return cls.from_points(
            np.array(points["steps"]), np.array(points["lrs"]), points.get("warmup")
        )


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return repr(v)  # full precision: a spec must parse back to the same schedule
    return str(v)


def detect_warmup(lrs: np.ndarray, steps: np.ndarray | None = None) -> int:
    """Length of an initial linear warmup: steps before the LR first reaches its early peak.

    ``lrs`` are the LR at ``steps`` (sorted; default 0, 1, 2, ...), the corners of a piecewise-
    linear schedule, so the rise ends at one of them and no per-step array is needed.
    Returns 0 unless the schedule starts well below its peak and rises to it.
    """
    lrs = np.asarray(lrs, dtype=float)
    steps = np.arange(len(lrs), dtype=float) if steps is None else np.asarray(steps, dtype=float)
    if len(lrs) < 2 or steps[-1] < 2:
        return 0
    rising = np.diff(lrs) >= -1e-15 * max(abs(lrs).max(), 1.0)
    end = len(lrs) - 1 if rising.all() else int(np.argmin(rising))
    peak = lrs[end]
    if peak <= 0 or lrs[0] > 0.5 * peak:
        return 0
    first_at_peak = int(np.argmax(lrs[: end + 1] >= peak * (1 - 1e-9)))
    return max(int(np.ceil(steps[first_at_peak])), 0)


# ---- families: plain functions of (steps, params), warmup applied by Schedule.lr -----------
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


_FAMILIES = {
    "constant": _constant,
    "cosine": _decay_from_warmup("cosine"),
    "linear": _decay_from_warmup("linear"),
    "wsd": _wsd,
    "multistep": _multistep,
    "cyclic": _cyclic,
}


# ---- parsing ---------------------------------------------------------------------------
def parse_schedule(spec: str) -> Schedule:
    """Parse ``kind:key=value,...`` into a validated :class:`Schedule`."""
    text = spec.strip()
    kind, _, rest = text.partition(":")
    kind = kind.strip().lower()
    if kind == "csv":
        return _parse_csv_spec(spec, rest)
    if kind not in _KEYS:
        known = ", ".join([*_KEYS, "csv"])
        raise UserError(f"schedule {spec!r}: unknown kind {kind!r}; expected one of {known}")
    required, optional = _KEYS[kind]
    params: dict[str, Any] = dict(optional)
    seen = set()
    for item in filter(None, (x.strip() for x in rest.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if not eq:
            raise UserError(f"schedule {spec!r}: expected key=value, got {item!r}")
        if key not in required and key not in optional:
            allowed = ", ".join([*required, *optional])
            raise UserError(
                f"schedule {spec!r}: unknown key {key!r} for {kind}; expected {allowed}"
            )
        if key in seen:
            raise UserError(f"schedule {spec!r}: {key} is given twice")
        params[key] = _parse_value(spec, key, value.strip())
        seen.add(key)
    missing = [k for k in required if k not in seen]
    if missing:
        raise UserError(f"schedule {spec!r}: missing {', '.join(missing)}")
    ordered = {k: params[k] for k in (*required, *optional)}
    _validate(spec, kind, ordered)
    return Schedule(kind, ordered)


def _parse_csv_spec(spec: str, rest: str) -> Schedule:
    """``csv:path=FILE[,warmup=W]``. The path may itself hold commas: only "warmup=W" before
    or after it is split off."""
    body, warmup_text = rest.strip().removesuffix(",").strip(), None
    head = re.fullmatch(r"warmup\s*=\s*([^,]*),(.*)", body, flags=re.DOTALL | re.I)
    tail = re.fullmatch(r"(.*),\s*warmup\s*=\s*([^,]*)", body, flags=re.DOTALL | re.I)
    if head:
        warmup_text, body = head.group(1), head.group(2).strip()
    elif tail:
        body, warmup_text = tail.group(1).strip(), tail.group(2)
    key, eq, path = body.partition("=")
    path = path.strip()
    if key.strip().lower() != "path" or not eq or not path:
        raise UserError(f"schedule {spec!r}: expected csv:path=FILE[,warmup=W]")
    if "," in path and not Path(path).exists():
        raise UserError(
            f"schedule {spec!r}: no such file {path!r} (expected csv:path=FILE[,warmup=W])"
        )
    warmup = None
    if warmup_text is not None:
        warmup = _parse_value(spec, "warmup", warmup_text.strip())
        if warmup < 0:
            raise UserError(f"schedule {spec!r}: warmup must be non-negative")
    return read_schedule_csv(path, warmup)


def _parse_value(spec: str, key: str, value: str) -> Any:
    try:
        if key in _STR_KEYS:
            return value.lower()
        if key in _LIST_KEYS:
            numbers = [float(v) for v in value.split("/") if v.strip()]
            return [int(v) for v in numbers] if key == "milestones" else numbers
        number = float(value)
        if not math.isfinite(number):
            raise ValueError
        if key in _INT_KEYS:
            if number != int(number):
                raise ValueError
            return int(number)
        return number
    except ValueError:
        kind = "an integer" if key in _INT_KEYS else "a number"
        if key in _LIST_KEYS:
            kind = "numbers separated by /"
        raise UserError(f"schedule {spec!r}: {key}={value!r} is not {kind}") from None


def _typed_value(kind: str, key: str, value: Any) -> Any:
    """A typed constructor's argument checked like the same key in a spec string."""
    label = f"{kind} schedule: {key}={value!r}"
    if key in _STR_KEYS:
        if not isinstance(value, str):
            raise UserError(f"{label}: expected a string")
        return value.lower()
    if key in _LIST_KEYS:
        try:
            items = [float(v) for v in value]
        except (TypeError, ValueError):
            raise UserError(f"{label}: expected a list of numbers") from None
        if not all(math.isfinite(v) for v in items):
            raise UserError(f"{label}: expected finite numbers")
        if key == "milestones":
            if any(v != int(v) for v in items):
                raise UserError(f"{label}: expected integers")
            return [int(v) for v in items]
        return items
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise UserError(f"{label}: expected a number")
    if not math.isfinite(value):
        raise UserError(f"{label}: expected a finite number")
    if key in _INT_KEYS:
        if value != int(value):
            raise UserError(f"{label}: expected an integer")
        return int(value)
    return float(value)


def _validate(spec: str, kind: str, p: dict[str, Any], prefix: bool = True) -> None:
    def fail(msg: str) -> None:
        raise UserError(f"schedule {spec!r}: {msg}" if prefix else f"{spec}: {msg}")

    if not p["peak"] > 0:
        fail("peak must be positive")
    if p.get("final") is not None and p["final"] < 0:
        fail("final must be non-negative")
    if p.get("final") is not None and p["final"] > p["peak"]:
        fail("final must not exceed peak")
    if p["warmup"] < 0:
        fail("warmup must be non-negative")
    total = p.get("total")
    if total is not None and total <= p["warmup"]:
        fail(f"total={total} must exceed warmup={p['warmup']}")
    if p.get("shape") is not None:
        shapes = ("cosine", "linear") if kind == "cyclic" else DECAY_SHAPES
        if p["shape"] not in shapes:
            fail(f"shape={p['shape']!r}; expected one of {', '.join(shapes)}")
        if p["shape"] == "geometric" and p["final"] <= 0:
            fail("shape=geometric needs final > 0")
    if kind == "wsd":
        if (p["decay_start"] is None) == (p["decay_frac"] is None):
            fail("give exactly one of decay_start and decay_frac")
        if p["decay_frac"] is not None and not 0 < p["decay_frac"] <= 1:
            fail("decay_frac must be in (0, 1]")
        start = wsd_decay_start(p)
        if not p["warmup"] <= start < total:
            fail(f"the decay must start in [warmup, total), got step {start}")
    if kind == "multistep":
        if (p["values"] is None) == (p["gamma"] is None):
            fail("give exactly one of values and gamma")
        ms = p["milestones"]
        if any(b <= a for a, b in itertools.pairwise(ms)):
            fail("milestones must increase")
        if p["values"] is not None and len(p["values"]) != len(ms):
            fail(f"values needs one learning rate per milestone ({len(ms)})")
        if p["values"] is not None and any(v < 0 for v in p["values"]):
            fail("values must be non-negative")
        if p["gamma"] is not None and p["gamma"] <= 0:
            fail("gamma must be positive")
    if kind == "cyclic" and not 0 <= p["rewarmup"] < p["cycle"]:
        fail("rewarmup must be in [0, cycle)")


def read_schedule_csv(path: str | Path, warmup: int | None = None) -> Schedule:
    """A point schedule from a CSV file with columns ``step`` and ``lr`` (aliases accepted);
    its warmup is detected from the LR unless given."""
    table = read_table(path)
    steps, lrs = table.lr_points()
    if len(steps) == 0:
        raise UserError(f"{path}: no learning-rate values found (expected columns step,lr)")
    return Schedule.from_points(steps, lrs, warmup)
