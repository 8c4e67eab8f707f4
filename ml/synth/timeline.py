"""Calendar of the window: hourly traffic profile, sale days and the two process clocks.

Visits are generated as Poisson processes in *operational time*: a clock that runs at the
hourly intensity m(t). One ordinary day is one unit of operational time (the hourly profile
averages 1), a sale day is `sale_*_factor` units. Drawing arrival times uniformly in
operational time and mapping them back to calendar time gives an inhomogeneous Poisson
process with intensity rate * m(t). Browse visits and purchase-intent visits use separate
clocks (intents peak harder in the morning and jump more on a sale day).

Times are seconds since the window start (00:00:00 UTC of `start`).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from ml.synth.config import SynthConfig

DAY = 86_400

# Relative traffic by hour of day, UTC (REES46 is a Russian shop: night is 20-02 UTC,
# the day peaks around 09 UTC = noon in Moscow). Normalised to mean 1 below.
BROWSE_HOURLY = np.array([
    0.22, 0.24, 0.40, 0.70, 1.00, 1.22, 1.38, 1.48, 1.55, 1.60, 1.56, 1.50,
    1.44, 1.38, 1.36, 1.38, 1.40, 1.38, 1.26, 1.02, 0.72, 0.46, 0.32, 0.24])
INTENT_HOURLY = np.array([
    0.16, 0.24, 0.50, 0.90, 1.25, 1.50, 1.62, 1.70, 1.76, 1.90, 1.74, 1.60,
    1.48, 1.40, 1.32, 1.26, 1.20, 1.10, 0.95, 0.75, 0.50, 0.32, 0.21, 0.16])


@dataclass(frozen=True)
class Clock:
    """Piecewise-linear map between calendar seconds and operational days.

    `edges_sec[h]` is the start of hour h of the window (h = 0..hours), `cum[h]` the
    operational time elapsed at that instant.
    """

    edges_sec: np.ndarray
    cum: np.ndarray

    @property
    def total(self) -> float:
        """Operational length of the whole window."""
        return float(self.cum[-1])

    def to_op(self, sec: np.ndarray | float) -> np.ndarray:
        """Calendar seconds (window-relative, may be negative) -> operational days.

        Before the window the clock runs flat at one unit per day.
        """
        sec = np.asarray(sec, dtype=np.float64)
        out = np.interp(sec, self.edges_sec, self.cum)
        before = sec < 0
        if np.any(before):
            out = np.where(before, sec / DAY, out)
        return out

    def to_sec(self, op: np.ndarray | float) -> np.ndarray:
        """Operational days -> calendar seconds; inverse of `to_op`."""
        op = np.asarray(op, dtype=np.float64)
        out = np.interp(op, self.cum, self.edges_sec)
        before = op < 0
        if np.any(before):
            out = np.where(before, op * DAY, out)
        return out


def _clock(hourly: np.ndarray, day_factor: np.ndarray) -> Clock:
    prof = hourly / hourly.mean()
    hours = len(day_factor) * 24
    m = np.tile(prof, len(day_factor)) * np.repeat(day_factor, 24)
    cum = np.concatenate([[0.0], np.cumsum(m) / 24.0])
    edges = np.arange(hours + 1, dtype=np.float64) * 3600.0
    return Clock(edges_sec=edges, cum=cum)


@dataclass(frozen=True)
class Timeline:
    """Window calendar: start epoch, days, sale days and the browse and intent clocks."""

    start: dt.date
    days: int
    start_epoch: int  # unix seconds of the window start
    sale_days: tuple[int, ...]  # day indices
    browse: Clock
    intent: Clock

    @property
    def end_sec(self) -> int:
        return self.days * DAY

    def day_label(self, day: int) -> str:
        return (self.start + dt.timedelta(days=day)).isoformat()

    def month_of_day(self, day: int) -> tuple[int, int]:
        d = self.start + dt.timedelta(days=day)
        return d.year, d.month


def make_timeline(cfg: SynthConfig) -> Timeline:
    """Build the calendar for `cfg` (pure)."""
    sale = cfg.sale_day_indices()
    browse_f = np.ones(cfg.days)
    intent_f = np.ones(cfg.days)
    for d in sale:
        browse_f[d] = cfg.sale_browse_factor
        intent_f[d] = cfg.sale_intent_factor
    epoch = int(dt.datetime(cfg.start.year, cfg.start.month, cfg.start.day,
                            tzinfo=dt.timezone.utc).timestamp())
    return Timeline(start=cfg.start, days=cfg.days, start_epoch=epoch, sale_days=tuple(sale),
                    browse=_clock(BROWSE_HOURLY, browse_f),
                    intent=_clock(INTENT_HOURLY, intent_f))
