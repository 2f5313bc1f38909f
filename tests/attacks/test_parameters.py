"""Attack: pass NaN, infinity or out-of-range privacy parameters so that the ledger pays for
anything (issue 10: `accord budget set --epsilon nan` was accepted, then 5 of 5 releases at
epsilon 1000 went through). Target: every such value refused with exit 2 and the allowed range,
before anything is read; nothing spent, written or recorded. Negative control: the checks Accord
had (``epsilon <= 0`` refused) let NaN, infinity and 1e308 through, and a NaN budget pays for every
release.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from accord.cli.main import app
from accord.errors import ParameterError
from accord.release.dp import ledger
from accord.release.dp.mechanism import rho_from_epsilon_delta
from accord.release.dp.params import MAX_DELTA, MAX_EPSILON
from accord.store import open_store
from tests.attacks.budget_lab import Lab, make_lab

BAD_EPSILON = ["nan", "inf", "-inf", "1e308", "0", "-1", "100.0001"]
BAD_DELTA = ["nan", "inf", "0", "-1e-9", "1", "1.5", "0.01", "1e-320"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    return make_lab(tmp_path_factory.mktemp("params") / "lab")


def _snapshot(hub: Path) -> tuple[object, ...]:
    with open_store(hub, read_only=True) as store:
        return (store.chain_head(), store.scalar("SELECT count(*) FROM audit"),
                store.scalar("SELECT count(*) FROM releases") if store.table_exists("releases") else 0)


def _commands(hub: Path, out: Path, csv: Path, option: str, value: str) -> list[list[str]]:
    h = ["--hub", str(hub)]
    cmds = [["budget", "set", option, value, *h],
            ["release", "tables", option, value, "--out", str(out), *h],
            ["release", "synthetic", option, value, "--rows", "10", "--out", str(out), *h],
            ["synthesize", str(csv), option, value, "--out", str(out / "s.csv")]]
    if option == "--epsilon":
        cmds.append(["budget", "grant", option, value, "--reason", "x", *h])
    # a valid companion parameter where the command needs one
    return [c + (["--epsilon", "1"] if option == "--delta" else [])
            for c in cmds]


@pytest.mark.parametrize(("option", "value"), [("--epsilon", v) for v in BAD_EPSILON]
                         + [("--delta", v) for v in BAD_DELTA])
def test_bad_parameters_are_refused_before_anything(lab: Lab, tmp_path: Path, option: str,
                                                    value: str) -> None:
    csv = tmp_path / "data.csv"
    csv.write_text("a,b\n1,2\n", encoding="utf-8")
    before = _snapshot(lab.hub)
    out = tmp_path / "out"
    allowed = f"(0, {MAX_EPSILON:g}]" if option == "--epsilon" else f"(0, {MAX_DELTA:g}]"
    for cmd in _commands(lab.hub, out, csv, option, value):
        r = CliRunner().invoke(app, cmd)
        assert r.exit_code == ParameterError.exit_code == 2, (cmd, r.output)
        assert allowed in r.output and "Traceback" not in r.output, (cmd, r.output)
        assert not out.exists()
    assert _snapshot(lab.hub) == before


@pytest.mark.parametrize("value", [math.nan, math.inf, -1.0, 0.0, 1e308])
def test_the_library_refuses_them_too(lab: Lab, tmp_path: Path, value: float) -> None:
    before = _snapshot(lab.hub)
    with open_store(lab.hub) as store:
        with pytest.raises(ParameterError):
            ledger.spend(store, value, kind="t", actor="a", purpose="", mechanism="m",
                         epsilon=None, delta=None, detail={})
        with pytest.raises(ParameterError):
            ledger.set_budget(store, value, 1e-6, "a")
        with pytest.raises(ParameterError):
            ledger.set_budget(store, 1.0, value, "a")
        with pytest.raises(ParameterError):
            ledger.grant(store, value, "a", "r")
    assert _snapshot(lab.hub) == before


def _old_ledger_pays(total_epsilon: float, releases: list[float]) -> int:
    """The checks before issue 10: ``epsilon <= 0`` refused (NaN passes), and a spend refused when
    ``spent + rho > total`` (never true against a NaN or infinite total)."""
    if total_epsilon <= 0:
        return 0
    total = total_epsilon if not math.isfinite(total_epsilon) else rho_from_epsilon_delta(
        min(total_epsilon, 100.0), 1e-6)
    spent, paid = 0.0, 0
    for eps in releases:
        rho = eps * eps / 2
        if not spent + rho > total:
            spent += rho
            paid += 1
    return paid


def test_negative_control_old_checks_pay_for_anything() -> None:
    assert _old_ledger_pays(math.nan, [1000.0] * 5) == 5  # the figure: 5 of 5
    assert _old_ledger_pays(math.inf, [1000.0] * 5) == 5
    # and today: the NaN budget and the epsilon-1000 release are both refused
    with pytest.raises(ParameterError):
        rho_from_epsilon_delta(math.nan, 1e-6)
    with pytest.raises(ParameterError):
        rho_from_epsilon_delta(1000.0, 1e-9)


@pytest.mark.parametrize("mechanism", ["gaussian", "laplace"])
def test_no_numpy_warnings_at_the_edge_of_the_range(tmp_path: Path, mechanism: str) -> None:
    lab = make_lab(tmp_path / "lab")
    with open_store(lab.hub) as store:
        for _ in range(4):
            ledger.grant(store, MAX_EPSILON, "steward", "test allowance")
    eps = str(MAX_EPSILON if mechanism == "gaussian" else 20)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any RuntimeWarning (divide by zero, overflow) fails
        r = CliRunner().invoke(app, ["release", "tables", "--epsilon", eps, "--mechanism", mechanism,
                                     "--tables", "case_type_by_sex", "--hub", str(lab.hub),
                                     "--out", str(tmp_path / "o")])
        assert r.exit_code == 0, r.output
        assert "Warning" not in r.output
