"""Comparison levels follow the schema's hardening (issue 11): the Dice thresholds were chosen
at the default hardening (randomised response p = 0.02, name filters diffused over 3 bits); a
schema with more noise or more diffusion gets them moved to where the same plain filters score,
instead of pushing equal values into lower levels."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accord.link.comparisons import (
    REFERENCE_DIFFUSION,
    REFERENCE_FLIP,
    comparison_levels,
    comparisons,
    expected_dice,
    field_levels,
    follow_hardening,
    plain_fill,
)
from accord.link.encodings import dice
from accord.protect.encoding import LinkageSecret
from tests.linkage_data import encode_rows, generate

SECRET = LinkageSecret(b"l" * 32)


def _simulated_dice(fill: float, plain: float, mixing: int, flip: float,
                    rng: np.random.Generator, bits: int = 256, n: int = 4000) -> float:
    """Mean Dice of hardened filter pairs built bit by bit (plain filters with the given fill
    and overlap, XOR of `mixing` random positions, then flips)."""
    # Per bit: set in both plain filters with chance c = plain * fill, in one only with
    # fill - c each, in neither otherwise (so each is `fill` full and their Dice is `plain`).
    c = plain * fill
    u = rng.random((n, bits))
    x = (u < fill)
    y = (u < c) | ((u >= fill) & (u < 2 * fill - c))
    mix = rng.integers(0, bits, size=(bits, mixing))
    hx = np.bitwise_xor.reduce(x[:, mix], axis=2)
    hy = np.bitwise_xor.reduce(y[:, mix], axis=2)
    hx ^= rng.random(hx.shape) < flip
    hy ^= rng.random(hy.shape) < flip
    return float(np.mean(2 * (hx & hy).sum(1) / (hx.sum(1) + hy.sum(1))))


@pytest.mark.parametrize(("fill", "plain", "mixing", "flip"), [
    (0.3, 1.0, 3, 0.02), (0.3, 0.75, 3, 0.02), (0.3, 0.3, 3, 0.02), (0.3, 0.75, 1, 0.05),
    (0.1, 0.5, 1, 0.02), (0.25, 0.9, 5, 0.1),
])
def test_expected_dice_matches_simulated_filters(fill: float, plain: float, mixing: int,
                                                 flip: float) -> None:
    got = _simulated_dice(fill, plain, mixing, flip, np.random.default_rng(7))
    want = float(expected_dice(plain, fill, mixing, flip))
    assert abs(got - want) < 0.015, (got, want)


@settings(max_examples=60, deadline=None)
@given(fill=st.floats(0.05, 0.45), mixing=st.integers(1, 7), flip=st.floats(0.0, 0.2),
       t=st.floats(0.3, 0.95))
def test_follow_hardening_is_monotone_and_the_identity_at_the_reference(
        fill: float, mixing: int, flip: float, t: float) -> None:
    observed = float((1 - (1 - 2 * flip) * (1 - 2 * fill) ** mixing) / 2)
    assert plain_fill(observed, mixing, flip) == pytest.approx(fill, abs=1e-6)
    assert follow_hardening((t,), observed, REFERENCE_DIFFUSION, REFERENCE_FLIP,
                            REFERENCE_DIFFUSION) == (t,)
    lo, hi = follow_hardening((t - 0.05, t), observed, mixing, flip, REFERENCE_DIFFUSION)
    assert lo <= hi
    # Moved thresholds stay between what unrelated and what equal values score.
    chance, equal = expected_dice(np.array([fill, 1.0]), fill, mixing, flip)
    assert chance - 1e-4 <= lo <= hi <= equal + 1e-4


def test_default_schema_keeps_its_levels() -> None:
    a_rows, b_rows, _ = generate(200, seed=3)
    a, b = encode_rows(a_rows, SECRET, 1), encode_rows(b_rows, SECRET, 2)
    for spec in a.info.schema.fields:
        assert field_levels(a, b, spec) == spec.dice_levels


def test_noisier_schema_keeps_equal_names_at_the_top_level() -> None:
    """Equal names encoded twice at p = 0.10 score below the fixed 0.85 (the negative control:
    most would fall out of the top level), and at the top level with the moved thresholds."""
    a_rows, _, _ = generate(600, seed=5)
    a = encode_rows(a_rows, SECRET, seed=1, flip=0.10)
    b = encode_rows(a_rows, SECRET, seed=2, flip=0.10)
    idx = np.arange(len(a))
    name = a.info.schema.fields[0]
    fixed_top = dice(a.fields[name.name], b.fields[name.name], idx, idx) >= name.dice_levels[0]
    assert fixed_top.mean() < 0.5  # the fixed threshold loses most equal names
    moved = field_levels(a, b, name)
    assert moved[0] < name.dice_levels[0]
    col = [c.field for c in comparisons(a.info.schema)].index(name.name)
    top = comparison_levels(a, b, idx, idx)[:, col] == 1
    assert top.mean() > 0.95
    # ... while unrelated names stay out of every agreeing level but the last
    other = np.roll(idx, 1)
    unrelated = comparison_levels(a, b, idx, other)[:, col]
    same = [r["given"] + r["family"] for r in a_rows]
    differ = np.array([same[i] != same[j] for i, j in zip(idx, other, strict=True)])
    assert (unrelated[differ] == 1).mean() < 0.02
