"""Feature drift between the snapshot a model was trained on and the one it scores.

Population stability index (PSI) per feature over deciles of the training values:
sum over bins of (share now - share at training) x ln(share now / share at training).
Read as usual in credit scoring: below 0.1 stable, 0.1-0.25 some shift, above 0.25 a shift
large enough to re-check the model (the warn test on `ml_feature_drift`).
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import pandas as pd

__all__ = ["MIN_ROWS", "PSI_WARN", "feature_drift", "population_stability_index"]

PSI_WARN = 0.25
# Below this many rows on either side a decile PSI is mostly noise (ten rows of open sessions
# give PSI > 3 on features that did not move): it is not computed.
MIN_ROWS = 100
# Empty bins get this share, so a bin that appears or vanishes counts (large, finite).
_FLOOR = 1e-4


def population_stability_index(reference: np.ndarray, current: np.ndarray,
                                bins: int = 10) -> float | None:
    """PSI of `current` against `reference` over quantile bins of `reference`.

    Few distinct values (counts, flags) are compared value by value instead, so ties do
    not collapse bins. None when either side has no finite value.
    """
    reference = np.asarray(reference, dtype=float)
    current = np.asarray(current, dtype=float)
    reference = reference[np.isfinite(reference)]
    current = current[np.isfinite(current)]
    if reference.size == 0 or current.size == 0:
        return None
    distinct = np.unique(reference)
    if distinct.size <= bins:
        # value by value; anything unseen in the reference is one more bin
        edges = np.concatenate([[-np.inf], (distinct[:-1] + distinct[1:]) / 2, [np.inf]])
    else:
        inner = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
        edges = np.concatenate([[-np.inf], inner, [np.inf]])
    expected = np.histogram(reference, edges)[0] / reference.size
    actual = np.histogram(current, edges)[0] / current.size
    if distinct.size <= bins:
        unseen = ~np.isin(current, distinct)
        expected = np.append(expected, 0.0)
        actual = np.append(actual, unseen.mean())
    expected = np.maximum(expected, _FLOOR)
    actual = np.maximum(actual, _FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def feature_drift(reference: pd.DataFrame, current: pd.DataFrame,
                  features: Iterable[str], task: str | None = None,
                  moves_with_time: Iterable[str] = ()) -> list[dict[str, Any]]:
    """One row per feature: psi, the two snapshots' sizes and means, and whether the
    PSI is above PSI_WARN (rows for `TrainingRun.drift`).

    `moves_with_time` names features that shift between two snapshot dates by
    construction (tenure grows with the date): their PSI is reported with
    `is_expected_shift` and never counts as drift. With fewer than MIN_ROWS rows on a
    side the PSI is None and `psi_note` says why.
    """
    expected = set(moves_with_time)
    rows = []
    for feature in features:
        ref = pd.to_numeric(reference[feature], errors="coerce").to_numpy(dtype=float)
        cur = pd.to_numeric(current[feature], errors="coerce").to_numpy(dtype=float)
        note = None
        if min(len(ref), len(cur)) < MIN_ROWS:
            psi = None
            note = (f"not computed: {len(ref)} training and {len(cur)} scoring rows, "
                    f"fewer than {MIN_ROWS} on a side")
        else:
            psi = population_stability_index(ref, cur)
        shifts = feature in expected
        rows.append({"task": task, "feature": feature, "psi": psi,
                     "n_reference": int(len(ref)), "n_current": int(len(cur)),
                     "mean_reference": float(np.nanmean(ref)) if len(ref) else None,
                     "mean_current": float(np.nanmean(cur)) if len(cur) else None,
                     "is_expected_shift": shifts, "psi_note": note,
                     "is_drifted": bool(psi is not None and psi > PSI_WARN and not shifts)})
    return rows
