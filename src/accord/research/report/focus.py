"""The report's focus groups (issue 18): women and girls; adolescents and youth; irregular and
undocumented migrants; survivors of sexual violence; people with reproductive-health needs.

Every figure here is read from the published (protected) tables of ``ctx.stats``: a hidden cell
stays hidden, and a ratio (needs met) is post-processing of two published counts, computed only
when both are shown. Labels come from the published dimensions, never codes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from accord.research.grid import SUPPRESSED_MARK
from accord.research.specs import MISSING
from accord.research.stats import StatsResult, StatTable
from accord.standard import load_standard

SEXUAL_VIOLENCE = ("rape", "sexual_assault")
IRREGULAR = ("irregular", "undocumented")
ADOLESCENT_BANDS = ("10-14", "15-19")


@dataclass(frozen=True)
class Figure:
    label: str
    value: int | None  # None: hidden (a count from 1 to threshold-1) or not published


@dataclass(frozen=True)
class MetRow:
    group: str
    needs: int | None
    received: int | None
    share: float | None  # received / needs, in [0, 1] once clipped
    margin: float | None  # about 1.96 standard deviations of the share (DP noise only)


@dataclass(frozen=True)
class FocusGroup:
    id: str
    title: str
    sentence: str
    figures: tuple[Figure, ...]
    met: tuple[MetRow, ...] = ()
    met_title: str = ""


def _table(stats: StatsResult, table_id: str) -> StatTable | None:
    try:
        return stats.table(table_id)
    except KeyError:
        return None


def _value(t: StatTable | None, **codes: str | None) -> int | None:
    """The published value at ``column=code`` (missing columns: their total); None if hidden or
    the category is not published."""
    if t is None:
        return None
    try:
        return t.value(*(codes.get(d.name) for d in t.dims))
    except ValueError:  # category not published (e.g. a code with a noisy total of 0)
        return None


def _sum(values: list[int | None]) -> int | None:
    """Sum of published values; unknown (None) if any part is hidden."""
    return None if any(v is None for v in values) else sum(v for v in values if v is not None)


def _label(t: StatTable | None, column: str, code: str) -> str:
    if t is not None:
        for d in t.dims:
            if d.name == column and code in d.codes:
                return d.labels[d.codes.index(code)]
    # A category the release left out (a noisy total of 0) still has its label in the standard:
    # a reader never sees a raw code.
    try:
        return load_standard().field(column).label_of(code)
    except (KeyError, ValueError):
        return code.replace("_", " ").capitalize()


def _say(v: int | None, threshold: int) -> str:
    return f"fewer than {threshold} (or not published)" if v is None else f"{v:,}"


def needs_met(needs: StatTable | None, received: StatTable | None, sd: dict[str, float],
              group_column: str) -> tuple[MetRow, ...]:
    """Share of stated needs met, by sex and group: received over needs, summed over the service
    codes both tables publish. With DP, the margin is the delta-method 95 % interval of the ratio
    of two independent noisy sums (each cell's noise sd from the draw)."""
    if needs is None or received is None:
        return ()
    n_dims = {d.name: d for d in needs.dims}
    r_dims = {d.name: d for d in received.dims}
    multi_n, sex, group = needs.dims[0], n_dims.get("sex"), n_dims.get(group_column)
    multi_r = received.dims[0]
    if sex is None or group is None or "sex" not in r_dims or group_column not in r_dims:
        return ()
    codes = [c for c in multi_n.codes if c in multi_r.codes and c != MISSING]
    sd_n, sd_r = sd.get(needs.id, 0.0), sd.get(received.id, 0.0)
    rows = []
    for s_code, s_label in zip(sex.codes, sex.labels, strict=True):
        if s_code not in ("female", "male"):
            continue
        for g_code, g_label in zip(group.codes, group.labels, strict=True):
            if g_code not in r_dims[group_column].codes or s_code not in r_dims["sex"].codes:
                continue
            n = _sum([_value(needs, **{multi_n.name: c, "sex": s_code, group_column: g_code})
                      for c in codes])
            r = _sum([_value(received, **{multi_r.name: c, "sex": s_code, group_column: g_code})
                      for c in codes])
            share = margin = None
            if n and r is not None:
                share = min(r / n, 1.0)
                if sd_n or sd_r:
                    k = len(codes)
                    var = (k * sd_r ** 2 + share ** 2 * k * sd_n ** 2) / n ** 2
                    margin = 1.96 * math.sqrt(var)
            rows.append(MetRow(f"{s_label}, {g_label}", n, r, share, margin))
    return tuple(rows)


def focus_groups(stats: StatsResult) -> tuple[FocusGroup, ...]:
    th = stats.rules.threshold
    sd: dict[str, float] = dict(stats.dp.get("noise_sd", {})) if stats.dp else {}
    sexage = _table(stats, "sex_by_age_band")
    casesex = _table(stats, "case_type_by_sex")
    gbv = _table(stats, "gbv_incident_by_sex_by_adolescent_band")
    rh = _table(stats, "rh_needs_by_sex_by_adolescent_band")
    rhs = _table(stats, "rh_services_by_sex_by_adolescent_band")
    exp = _table(stats, "exploitation_by_sex_by_youth")
    mig = _table(stats, "migration_status_by_sex_by_young_people")
    gref = _table(stats, "gbv_services_referred_by_sex_by_adolescent_band")
    grec = _table(stats, "gbv_services_received_by_sex_by_adolescent_band")
    srh = _table(stats, "survivor_rh_needs_by_sex_by_adolescent_band")
    out: list[FocusGroup] = []

    women = _value(sexage, sex="female")
    everyone = _value(sexage)
    women_gbv = _value(casesex, case_type="gbv_survivor", sex="female")
    share = f" ({100 * women / everyone:.0f} % of everyone)" if women and everyone else ""
    out.append(FocusGroup(
        "women_girls", "Women and girls",
        f"{_say(women, th)} women and girls are recorded{share}; {_say(women_gbv, th)} of them "
        "came as GBV cases.",
        (Figure("Women and girls", women), Figure("Everyone", everyone),
         Figure("Women and girls, GBV cases", women_gbv))))

    young = _value(mig, age_young_people="10-24")
    youth_trafficked = {c: _value(exp, type_of_exploitation=c, age_youth="15-24")
                        for c in (exp.dims[0].codes if exp is not None else ())
                        if c != MISSING}
    shown = {c: v for c, v in youth_trafficked.items() if v is not None}
    top = max(shown, key=lambda c: shown[c]) if shown else None
    top_text = (f"; the most frequent form of exploitation among youth (15-24) is "
                f"{_label(exp, 'type_of_exploitation', top)} ({shown[top]:,})"
                if top is not None else "")
    out.append(FocusGroup(
        "adolescents_youth", "Adolescents and youth",
        f"{_say(young, th)} young people (10-24) are recorded{top_text}.",
        (Figure("Young people (10-24)", young),
         *(Figure(f"Youth (15-24): {_label(exp, 'type_of_exploitation', c)}", v)
           for c, v in youth_trafficked.items()))))

    irr = {(s, c): _value(mig, migration_status=c, sex=s, age_young_people="10-24")
           for s in ("female", "male") for c in IRREGULAR}
    f_irr = _sum([irr["female", c] for c in IRREGULAR])
    m_irr = _sum([irr["male", c] for c in IRREGULAR])
    out.append(FocusGroup(
        "irregular", "Irregular and undocumented migrants",
        f"Among young people (10-24), {_say(f_irr, th)} young women and girls and "
        f"{_say(m_irr, th)} young men and boys are irregular or undocumented.",
        tuple(Figure(f"{_label(mig, 'sex', s)} 10-24: {_label(mig, 'migration_status', c)}", v)
              for (s, c), v in irr.items())))

    girls_sv = {(c, b): _value(gbv, gbv_incident_type=c, sex="female", age_adolescent=b)
                for c in SEXUAL_VIOLENCE for b in ADOLESCENT_BANDS}
    total_girls = _sum(list(girls_sv.values()))
    # Survivors of any case type (derived flag): which reproductive-health needs girls stated.
    srh_codes = [c for c in (srh.dims[0].codes if srh is not None else ()) if c != MISSING]
    survivor_needs = {c: _sum([_value(srh, rh_needs=c, sex="female", age_adolescent=b)
                               for b in ADOLESCENT_BANDS]) for c in srh_codes}
    shown_needs = {c: v for c, v in survivor_needs.items() if v}
    top_need = max(shown_needs, key=lambda c: shown_needs[c]) if shown_needs else None
    top_label = _label(srh, "rh_needs", top_need) if top_need is not None else ""
    need_text = (f" The need adolescent girls who survived sexual violence stated most often is "
                 f"{top_label[:1].lower()}{top_label[1:]} ({shown_needs[top_need]:,})."
                 if top_need is not None else "")
    out.append(FocusGroup(
        "sexual_violence", "Survivors of sexual violence",
        f"{_say(total_girls, th)} reports of rape or sexual assault concern adolescent girls "
        f"(10-19); a girl who reported both counts under each.{need_text}",
        (*(Figure(f"Girls {b}: {_label(gbv, 'gbv_incident_type', c)}", v)
           for (c, b), v in girls_sv.items()),
         *(Figure(f"Girls 10-19 who survived sexual violence, need: {_label(srh, 'rh_needs', c)}",
                  v) for c, v in survivor_needs.items())),
        met=needs_met(gref, grec, sd, "age_adolescent"),
        met_title="GBV services met: services received over services referred to (the stated "
                  "need), GBV cases, by sex and adolescent band"))

    rh_codes = [c for c in (rh.dims[0].codes if rh is not None else ()) if c != MISSING]
    girls_needs = {c: _sum([_value(rh, rh_needs=c, sex="female", age_adolescent=b)
                            for b in ADOLESCENT_BANDS]) for c in rh_codes}
    girls_got = {c: _sum([_value(rhs, rh_services_received=c, sex="female", age_adolescent=b)
                          for b in ADOLESCENT_BANDS]) for c in rh_codes}
    cmr = girls_needs.get("clinical_management_of_rape")
    out.append(FocusGroup(
        "rh_needs", "People with reproductive-health needs",
        f"Adolescent girls (10-19) stated {_say(cmr, th)} needs for clinical management of rape; "
        "the table below compares the services received with the needs stated.",
        tuple(f for c in rh_codes for f in (
            Figure(f"Girls 10-19, need stated: {_label(rh, 'rh_needs', c)}", girls_needs[c]),
            Figure(f"Girls 10-19, service received: {_label(rh, 'rh_needs', c)}",
                   girls_got[c]))),
        met=needs_met(rh, rhs, sd, "age_adolescent"),
        met_title="Needs met: reproductive-health services received over needs stated, by sex "
                  "and adolescent band"))
    return tuple(out)


def focus_context(stats: StatsResult) -> dict[str, Any]:
    # How a hidden value reads, as on the rest of the page (ReportContext.mark).
    mark = f"<{stats.rules.threshold}" if stats.method == "dp" else SUPPRESSED_MARK
    return {"groups": focus_groups(stats), "mark": mark,
            "threshold": stats.rules.threshold, "dp": stats.method == "dp"}
