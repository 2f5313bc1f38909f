"""The look-alike adjustment (accord.link.frequency) follows the name field's Dice thresholds,
not fixed level numbers: look-alikes are candidates at Dice 0.7 or more and the split covers
Dice 0.6 or more, whichever levels a schema defines."""

from __future__ import annotations

import numpy as np

from accord.link.frequency import COUNTED, SPLIT, frequency_split, name_levels
from accord.link.match import MatchConfig, _name_codes
from accord.protect.encoding.schema import default_schema, unit_schema

NAME, CODES = 0, (2,)


def test_default_and_unit_levels_keep_the_measured_split() -> None:
    assert name_levels((0.85, 0.7, 0.6)) == (COUNTED, SPLIT) == ((1, 2), (1, 2, 3))
    assert name_levels((0.85, 0.7, 0.6, 0.55)) == ((1, 2), (1, 2, 3))
    for schema in (default_schema(), unit_schema()):
        fields = _name_codes(schema, MatchConfig())
        assert fields is not None and fields[2:] == ((1, 2), (1, 2, 3))


def test_a_finer_band_above_keeps_the_same_dice_range() -> None:
    # A level 0.92 above the default ones: the look-alikes are still the candidates at 0.7 or
    # more (levels 1-3), and the split still reaches the 0.6 band (level 4). Fixed numbers
    # (1, 2) / (1, 2, 3) would count only names at 0.85 or more and leave the 0.6 band out.
    assert name_levels((0.92, 0.85, 0.7, 0.6)) == ((1, 2, 3), (1, 2, 3, 4))
    assert name_levels((0.85, 0.775, 0.7, 0.65, 0.6)) == ((1, 2, 3), (1, 2, 3, 4, 5))


def test_the_split_counts_look_alikes_at_the_levels_it_is_given() -> None:
    # Levels (0.92, 0.85, 0.7, 0.6): A0 has candidates B0 (level 1) and B1 (level 3, Dice
    # 0.7-0.85), so with the levels that follow the thresholds B1 is a look-alike of (A0, B0).
    ia, ib = np.array([0, 0, 1]), np.array([0, 1, 1])
    gamma = np.asarray([(1, 0, 1), (3, 0, 1), (4, 0, 1)], dtype=np.int8)
    ones = np.zeros(len(ia))
    counted, split = name_levels((0.92, 0.85, 0.7, 0.6))
    follows = frequency_split(gamma, ia, ib, ones, gamma, ia, ib, True, ones, (2, 2), NAME,
                              CODES, counted=counted, split=split)
    assert follows.counts_a.tolist() == [2, 0]
    assert follows.buckets(gamma[:1], ia[:1], ib[:1], True).tolist() == [1]
    assert follows.log_ratio.shape[0] == 4
    # (A1, B1) at level 4 (Dice 0.6-0.7) is in the split: its factor is that of its bucket.
    adj = follows.adjustment(gamma, ia, ib)
    k = follows.buckets(gamma[2:], ia[2:], ib[2:], True)[0]
    assert adj[2] == follows.log_ratio[3, k]
