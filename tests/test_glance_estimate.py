"""The report's first screen states how much the choice of model moves the estimate (issue 14)."""

from __future__ import annotations

from typing import Any

from accord.research.report.glance import _estimate


def _summary(model_choice: dict[str, Any] | None) -> dict[str, Any]:
    est: dict[str, Any] = {"total": 3100.0, "interval": [2900.0, 3350.0], "level": 0.95}
    if model_choice is not None:
        est["model_choice"] = model_choice
    return {"overall": {"estimate": est}}


def test_interval_widens_to_the_models_the_data_support() -> None:
    out = _estimate(_summary({"supported_range": [2700.4, 3300.0], "averaged_total": 3050.0}))
    assert out is not None
    text = out["uncertainty"]
    assert "between 2,900 and 3,350" in text  # the chosen model's interval
    assert "from 2,700 to 3,300" in text  # the supported models' totals
    assert "allowing for the choice of model, between 2,700 and 3,350" in text


def test_without_model_averaging_only_the_model_interval_is_stated() -> None:
    out = _estimate(_summary(None))
    assert out is not None and "choice of model" not in out["uncertainty"]
