"""Sparsity schedules with explicit semantics (pure Python: importable without torch).

A schedule maps a time ``t`` (an integer in one ``unit``: optimizer ``step``, ``epoch`` or
prune/retrain ``cycle``, counted from 0 at the start of the prune stage) to a target sparsity.

Pruning events happen at ``t = begin, begin + frequency, begin + 2*frequency, ...`` while
``t < end``, and always at ``t = end``. At each event the model is pruned to ``sparsity(t)``; between
events the masks are held. Before ``begin`` nothing is pruned; from ``end`` on the sparsity is the
final one. With ``p = (t - begin) / (end - begin)`` (``p = 1`` when ``end == begin``):

* ``constant``:    s(t) = s_f                                  (one-shot at ``begin``)
* ``linear``:      s(t) = s_i + (s_f - s_i) * p
* ``polynomial``:  s(t) = s_f + (s_i - s_f) * (1 - p) ** exponent
* ``agp``:         polynomial with exponent 3 (Zhu & Gupta 2017:
                   s_t = s_f + (s_i - s_f)(1 - (t - t0)/(n Δt))^3, t0 = begin, Δt = frequency,
                   n Δt = end - begin)
* ``exponential``: s(t) = 1 - (1 - s_i) * ((1 - s_f) / (1 - s_i)) ** p
                   (the surviving fraction shrinks geometrically: every event at equal spacing
                   removes the same fraction of the weights still alive, as in iterative magnitude
                   pruning / lottery tickets)

Units: ``step`` events fire before the optimizer step with that 0-based global step index;
``epoch`` events fire at the start of that 0-based epoch (so pruning at ``end`` still leaves the
epoch ``end`` and any after it for recovery); ``cycle`` events fire before the retraining fit of
that 0-based cycle (iterative prune -> retrain).

A schedule that would prune nothing, or never reach its final sparsity, is an error: ``check``
raises ``ConfigError`` if ``end`` does not fall inside the available time ``[0, total)``, if
``frequency`` < 1, or if the final sparsity is not above 0.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeflow.core.errors import ConfigError

KINDS = ("constant", "linear", "polynomial", "agp", "exponential")
UNITS = ("step", "epoch", "cycle")


@dataclass(frozen=True)
class SparsitySchedule:
    kind: str = "agp"
    final: float = 0.8
    initial: float = 0.0
    begin: int = 0
    end: int = 0
    frequency: int = 1
    unit: str = "epoch"
    exponent: float = 3.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError("schedule", f"must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.unit not in UNITS:
            raise ConfigError("unit", f"must be one of {', '.join(UNITS)}, got {self.unit!r}")
        if not 0.0 < self.final < 1.0:
            raise ConfigError(
                "target_sparsity", f"must be in (0, 1) (0 would prune nothing), got {self.final!r}"
            )
        if not 0.0 <= self.initial <= self.final:
            raise ConfigError(
                "initial_sparsity", f"must be in [0, target_sparsity], got {self.initial!r}"
            )
        if self.begin < 0:
            raise ConfigError("begin", f"must be an integer >= 0, got {self.begin!r}")
        if self.end < self.begin:
            raise ConfigError("end", f"must be >= begin ({self.begin}), got {self.end!r}")
        if self.frequency < 1:
            raise ConfigError("frequency", f"must be an integer >= 1, got {self.frequency!r}")
        if self.exponent <= 0:
            raise ConfigError("exponent", f"must be > 0, got {self.exponent!r}")

    # ------------------------------------------------------------------ values
    def events(self) -> list[int]:
        """The times at which pruning happens, ascending (``end`` always included)."""
        ev = list(range(self.begin, self.end, self.frequency))
        ev.append(self.end)
        return ev

    def sparsity(self, t: int) -> float:
        """Target sparsity in force at time ``t`` (after the event at ``t``, if any)."""
        if t < self.begin:
            return 0.0
        last = max(e for e in self.events() if e <= t)
        return self._value(last)

    def _value(self, t: int) -> float:
        si, sf = self.initial, self.final
        if self.kind == "constant":
            return sf
        span = self.end - self.begin
        p = 1.0 if span == 0 else min(max((t - self.begin) / span, 0.0), 1.0)
        if self.kind == "linear":
            return si + (sf - si) * p
        if self.kind in ("polynomial", "agp"):
            e = 3.0 if self.kind == "agp" else self.exponent
            return sf + (si - sf) * (1.0 - p) ** e
        # exponential
        return 1.0 - (1.0 - si) * ((1.0 - sf) / (1.0 - si)) ** p

    def target_at(self, t: int) -> float | None:
        """The sparsity to prune to if ``t`` is an event, else ``None``."""
        return self._value(t) if t in self.events() else None

    def table(self) -> list[tuple[int, float]]:
        """(event time, target sparsity) for every event."""
        return [(t, self._value(t)) for t in self.events()]

    # ------------------------------------------------------------------ checks
    def check(self, total: int) -> None:
        """Raise ConfigError unless every event lies in ``[0, total)`` (``total`` = number of
        steps / epochs / cycles actually available), so the final sparsity is really reached."""
        what = {"step": "optimizer steps", "epoch": "epochs", "cycle": "cycles"}[self.unit]
        if total <= self.begin:
            raise ConfigError(
                "begin",
                f"schedule would prune nothing: begin={self.begin} but the run has only {total} "
                f"{what} (unit={self.unit}); lower begin/end or train longer",
            )
        if self.end >= total:
            raise ConfigError(
                "end",
                f"schedule would not reach target_sparsity={self.final}: end={self.end} but the run "
                f"has only {total} {what} (0..{total - 1}, unit={self.unit}); lower end or train "
                "longer",
            )


def cycle_sparsities(final: float, cycles: int) -> list[float]:
    """Per-cycle targets of iterative magnitude pruning that removes the same fraction of the
    surviving weights each cycle: ``s_c = 1 - (1 - final) ** ((c + 1) / cycles)``."""
    return [1.0 - (1.0 - final) ** ((c + 1) / cycles) for c in range(cycles)]
