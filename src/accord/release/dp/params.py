"""The one validator of privacy parameters: epsilon, delta, rho and budget figures.

Every entry point (the CLI before it opens anything, and the library functions that spend or set a
budget) calls these, so a NaN, an infinity or an out-of-range figure is refused with exit 2 and the
allowed range before any record is read, any noise drawn or anything written. NaN compares false
with everything, so ``epsilon <= 0`` alone lets it through; each check here is written as "inside
the range", which NaN never is.
"""

from __future__ import annotations

import math

from accord.errors import ParameterError

# An epsilon above 100 bounds the odds ratio by e^100: it protects nobody, and the scales it
# implies underflow the noise to nothing. A release, a budget total and a grant are each capped.
MAX_EPSILON = 100.0
# delta is a probability of failure; above 1e-3 it is a real chance that the guarantee does not
# hold for a given person in a hub of a few thousand people. Protect more, say so (docs/dp.md).
MAX_DELTA = 1e-3
# Far below any delta in use (1e-9 to 1e-12), far above where the conversions lose precision: a
# subnormal delta (1e-320) turned the Gaussian scale into NaN inside OpenDP.
MIN_DELTA = 1e-100
# rho of an epsilon-100 pure-DP release (epsilon^2 / 2): no legitimate single cost is larger.
MAX_RHO = MAX_EPSILON**2 / 2


def _number(value: object, option: str, allowed: str) -> float:
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ParameterError(f"{option} must be a number {allowed}", hint=f"give {option} {allowed}") from None
    return x


def in_range(value: object, option: str, upper: float, hint: str) -> float:
    """A finite number in (0, upper], or a ParameterError that states the range (the one check
    behind every privacy parameter: epsilon, delta, rho and the noisy statistics' --rho)."""
    allowed = f"in (0, {upper:g}]"
    x = _number(value, option, allowed)
    if not (math.isfinite(x) and 0.0 < x <= upper):
        # The value given is not repeated: it may be anything a client sent (the range says enough).
        raise ParameterError(f"{option} must be a finite number {allowed}", hint=hint)
    return x


def check_epsilon(value: object, option: str = "--epsilon") -> float:
    """A finite epsilon in (0, MAX_EPSILON]."""
    return in_range(value, option, MAX_EPSILON,
                     f"give {option} greater than 0 and at most {MAX_EPSILON:g} "
                     "(typical releases use 0.1 to 2)")


def check_delta(value: object, option: str = "--delta") -> float:
    """A finite delta in [MIN_DELTA, MAX_DELTA]."""
    hint = (f"give {option} from {MIN_DELTA:g} to {MAX_DELTA:g}, e.g. 1e-9 (or --mechanism laplace for pure DP "
            "where offered)")
    x = in_range(value, option, MAX_DELTA, hint)
    if x < MIN_DELTA:
        raise ParameterError(f"{option} must be a finite number in (0, {MAX_DELTA:g}] and at least {MIN_DELTA:g}",
                             hint=hint)
    return x


def check_rho(value: object, what: str = "rho") -> float:
    """A finite zCDP cost in (0, MAX_RHO]."""
    return in_range(value, what, MAX_RHO, "a DP release must cost a positive, finite rho")
