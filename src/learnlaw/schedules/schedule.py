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

Sparse logged points are interpolated linearly, except a step change: an LR change between two
logged steps whose neighbouring intervals are both flat (a multi-step or two-stage schedule
logged every k steps) holds the earlier value until the later logged step, instead of spreading
the drop over the k steps between them (``hold_step_changes``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from learnlaw.errors import UserError
from learnlaw.io import read_table
from learnlaw.limits import check_memory
from learnlaw.schedules import spec as spec_format
from learnlaw.schedules.families import FAMILIES


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
        steps, lrs = hold_step_changes(steps, lrs)
        return cls("points", {"warmup": int(warmup)}, steps, lrs)

    def with_warmup(self, warmup: int) -> Schedule:
        """The same schedule behind a linear warmup of ``warmup`` steps (for logged points:
        the first ``warmup`` steps counted as warmup, their logged values unchanged)."""
        if self.kind == "points":
            return Schedule(
                self.kind, {**self.params, "warmup": int(warmup)}, self.point_steps, self.point_lrs
            )
        return Schedule._build(self.kind, **{**self.params, "warmup": int(warmup)})

    @classmethod
    def parse(cls, spec: str) -> Schedule:
        """A schedule from its spec string, e.g. ``"wsd:peak=3e-4,total=24000,decay_frac=0.2"``."""
        kind, params = spec_format.parse_spec(spec)
        if kind == "csv":
            return read_schedule_csv(params["path"], params["warmup"])
        return cls(kind, params)

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
        return cls(kind, spec_format.typed_params(kind, given))

    # ---- evaluation ---------------------------------------------------------------------
    def lr(self, steps: np.ndarray | int) -> np.ndarray:
        """Learning rate at the given integer steps."""
        s = np.asarray(steps, dtype=float)
        if self.kind == "points":
            return np.interp(s, self.point_steps, self.point_lrs)
        p = self.params
        out = FAMILIES[self.kind](s, p)
        warmup = p.get("warmup", 0) or 0
        if warmup > 0:
            out = np.where(s < warmup, p["peak"] * s / warmup, out)
        return out

    def values(self, n: int) -> np.ndarray:
        """Learning rates for steps 0..n-1."""
        check_memory(f"the learning rates of {n} steps", 3 * 8 * n)
        return self.lr(np.arange(n))

    @property
    def warmup(self) -> int:
        return int(self.params.get("warmup", 0) or 0)

    @property
    def total(self) -> int | None:
        """The last step the schedule is meant for (logged points: the last logged step)."""
        if self.kind == "points":
            return int(self.point_steps[-1])
        t = self.params.get("total")
        return None if t is None else int(t)

    # ---- text form ----------------------------------------------------------------------
    def spec(self) -> str:
        """The spec string this schedule parses from (not available for point schedules)."""
        if self.kind == "points":
            raise UserError(
                "a schedule of logged points has no spec string (to_json() describes it)"
            )
        return spec_format.format_spec(self.kind, self.params)

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
            return cls.parse(obj["spec"])
        points = obj["points"]
        return cls.from_points(
            np.array(points["steps"]), np.array(points["lrs"]), points.get("warmup")
        )


def hold_step_changes(steps: np.ndarray, lrs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted logged ``(step, lr)`` points with every step change held: where the LR changes
    between logged steps a < b (b > a + 1) and is flat on the logged intervals just before a and
    just after b, a point (b - 1, lr at a) is added, so interpolation keeps the earlier value
    until b and changes in one step, as the multi-step schedule that was logged did.

    A change next to another change (a smooth decay logged sparsely) stays linear. Applying it
    twice adds nothing (the held change is then one step wide)."""
    if len(steps) < 4:
        return steps, lrs
    diff = np.diff(lrs)
    scale = max(float(np.abs(lrs).max()), 1e-300)
    flat = np.abs(diff) <= 1e-9 * scale
    wide = np.diff(steps) > 1
    i = np.arange(1, len(diff) - 1)  # interval i: points i..i+1, with neighbours on both sides
    change = i[~flat[i] & wide[i] & flat[i - 1] & flat[i + 1]]
    if len(change) == 0:
        return steps, lrs
    new_steps = np.insert(steps, change + 1, steps[change + 1] - 1)
    new_lrs = np.insert(lrs, change + 1, lrs[change])
    return new_steps, new_lrs


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


def read_schedule_csv(path: str | Path, warmup: int | None = None) -> Schedule:
    """A point schedule from a CSV file with columns ``step`` and ``lr`` (aliases accepted);
    its warmup is detected from the LR unless given."""
    table = read_table(path)
    steps, lrs = table.lr_points()
    if len(steps) == 0:
        raise UserError(f"{path}: no learning-rate values found (expected columns step,lr)")
    return Schedule.from_points(steps, lrs, warmup)


def parse_schedule(spec: str) -> Schedule:
    """Parse ``kind:key=value,...`` into a validated :class:`Schedule` (``Schedule.parse``)."""
    return Schedule.parse(spec)


def as_schedule(value: Schedule | str, what: str = "schedule") -> Schedule:
    """A ``Schedule``, or the schedule a spec string describes (what the command line takes);
    anything else is refused naming ``what``."""
    if isinstance(value, Schedule):
        return value
    if isinstance(value, str):
        return Schedule.parse(value)
    raise UserError(
        f"{what}: expected a Schedule or a spec string such as 'cosine:peak=3e-4,total=10000', "
        f"got {type(value).__name__}"
    )
