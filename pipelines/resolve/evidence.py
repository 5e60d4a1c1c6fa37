"""Readable evidence for links: "why are these one person?" answered field by field.

A probabilistic link reads as a waterfall of log2 Bayes factors, starting at the prior:
"prior -19.9 | name exact +9.2 | birth_date exact +14.1 | gender exact +1.0 | phone null 0 |
cert ends_agree +15.5 | region different -3.6 => weight 16.3, p 0.99999". It names levels,
never values, so it holds no personal data and can go to logs, tables and run metadata.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.resolve.rules import MatchingRules

DETERMINISTIC_EXPLANATIONS = {
    "cert_number": "rule cert_number: equal valid resident ID numbers",
    "national_volunteer_no": "rule national_volunteer_no: the provincial account carries the national volunteer number",
    "review_same": "analyst decision: same person (review_decisions)",
    "uscc": "rule uscc: equal normalized unified social credit codes",
    "national_team_no": "rule national_team_no: the provincial team carries the national team number",
    "name_region": "rule name_region: equal normalized name and county",
}


def level_labels(levels: pd.DataFrame, rules: MatchingRules) -> pd.DataFrame:
    """Replace each `<comparison>_level` code by its label."""
    labelled = pd.DataFrame(index=levels.index)
    for comparison in rules.comparisons:
        labels = np.array([lv.label for lv in comparison.levels], dtype=object)
        labelled[f"{comparison.name}_level"] = labels[levels[f"{comparison.name}_level"].to_numpy()]
    return labelled


def _formatted(values: pd.Series, spec: str) -> np.ndarray:
    """format(v, spec) of each float, as text: each distinct value formatted once (at a
    million persons a comparison's weights take 2 to 4 values, the name's ~1,100, the totals
    ~13,000, over ~460,000 pairs)."""
    numbers = values.to_numpy(dtype="float64")
    # distinct by their bits: -0.0 and 0.0 read differently ("-0.0", "+0.0")
    _, first, where = np.unique(numbers.view("int64"), return_index=True, return_inverse=True)
    return np.array([format(value, spec) for value in numbers[first]], dtype=object)[where.reshape(-1)]


def waterfall_text(scored: pd.DataFrame, rules: MatchingRules, prior_log2_odds: float) -> pd.Series:
    """One line per pair: prior, each comparison's level and weight, total weight and probability.

    `scored` holds `<comparison>_level` labels, `<comparison>_weight`, match_weight, match_probability.
    """
    if scored.empty:  # no candidate pair (a small world): `.map` on an empty float column
        return pd.Series([], index=scored.index, dtype=object)  # stays float and '+' fails
    text = pd.Series(f"prior {prior_log2_odds:+.1f}", index=scored.index, dtype=object)
    for comparison in rules.comparisons:
        label = scored[f"{comparison.name}_level"].astype(str)
        weight = _formatted(scored[f"{comparison.name}_weight"], "+.1f")
        text = text + " | " + comparison.name + " " + label + " " + weight
    totals = (
        " => weight " + _formatted(scored["match_weight"], "+.1f")
        + ", p " + _formatted(scored["match_probability"], ".6f")
    )
    return text + totals
