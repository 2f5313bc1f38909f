"""The standard as an XLSForm (Kobo/ODK), and the mapping that reads that form's exports back.

Partners who collect with Kobo or ODK start from this form, so their exports map to the
standard without hand-written mapping files. pyxform (the ODK reference converter) checks the
generated form, so a form that Kobo would reject never leaves this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pycountry
import yaml
from openpyxl import Workbook

from accord.errors import StandardError
from accord.standard.model import Field, FieldRole, FieldType, Standard

COUNTRY_LIST = "iso_country"

# Questions are grouped as an intake form is read: the person, the case, what happened, needs.
GROUPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("grp_consent", "Consent", ("consent_statistics", "consent_linkage", "consent_research")),
    ("grp_person", "The person", ("case_id", "given_name", "family_name", "date_of_birth", "age",
                                  "age_band_reported", "sex", "citizenship", "phone", "document_number",
                                  "migration_status", "unaccompanied_separated", "disability", "pregnant")),
    ("grp_case", "Registration", ("case_type", "registration_date", "country_of_registration",
                                  "area_of_registration", "trafficking_status", "status_decided_by",
                                  "case_status", "identified_by", "screening_method", "referral_reason_in",
                                  "referral_reason_out", "outgoing_referral_date", "referred_to",
                                  "services_received")),
    ("grp_exploitation", "What happened", ("country_of_exploitation", "type_of_exploitation",
                                           "forced_labour_industry", "type_of_sexual_exploitation",
                                           "forced_criminality", "scam_compound",
                                           "means_of_control", "recruiter_relationship", "recruitment_method",
                                           "country_of_residence", "country_of_origin", "country_of_recruitment",
                                           "countries_of_transit", "country_of_destination")),
    ("grp_perpetrators", "Perpetrators (numbers only, no names)", (
        "perpetrator_count", "perpetrator_sex", "perpetrator_role", "perpetrator_also_victim",
        "perpetrator_victim_count")),
    ("grp_gbv", "Gender-based violence (GBVIMS)", (
        "gbv_incident_type", "gbv_displacement_stage", "gbv_location_type", "gbv_perpetrator_relationship",
        "gbv_harmful_traditional_practice", "gbv_money_exchanged", "gbv_abduction", "gbv_reported_elsewhere",
        "gbv_previous_incidents")),
    ("grp_needs", "Reproductive health", ("rh_needs", "rh_services_received")),
    ("grp_disability", "Washington Group short set", (
        "wg_seeing", "wg_hearing", "wg_walking", "wg_cognition", "wg_self_care", "wg_communication")),
)
# Fields ingest sets itself; the form does not ask them.
SET_BY_INGEST = frozenset({"dob_quality", "registration_date_quality", "age_quality"})

# Skip logic that a form should have (the standard itself stays flat).
RELEVANT = {
    "forced_labour_industry": "selected(${type_of_exploitation}, 'forced_labour')",
    "type_of_sexual_exploitation": "selected(${type_of_exploitation}, 'sexual_exploitation')",
    "gbv_incident_type": "${case_type} = 'gbv_survivor'",
    "type_of_exploitation": "${case_type} = 'trafficking_victim'",
    "age": "${date_of_birth} = ''",
    "age_band_reported": "${date_of_birth} = '' and ${age} = ''",
    "grp_gbv_context": "${case_type} = 'gbv_survivor'",
    "forced_criminality": "selected(${type_of_exploitation}, 'forced_criminality')",
}
for _name in ("gbv_displacement_stage", "gbv_location_type", "gbv_perpetrator_relationship",
              "gbv_harmful_traditional_practice", "gbv_money_exchanged", "gbv_abduction",
              "gbv_reported_elsewhere", "gbv_previous_incidents"):
    RELEVANT[_name] = RELEVANT["gbv_incident_type"]
del RELEVANT["grp_gbv_context"]


def _question_type(field: Field) -> str:
    return {
        FieldType.STRING: "text",
        FieldType.DATE: "date",
        FieldType.INTEGER: "integer",
        FieldType.CODE: f"select_one {field.name}",
        FieldType.CODES: f"select_multiple {field.name}",
        FieldType.COUNTRY: f"select_one {COUNTRY_LIST}",
        FieldType.COUNTRIES: f"select_multiple {COUNTRY_LIST}",
    }[field.type]


def _survey_rows(standard: Standard) -> list[dict[str, Any]]:
    placed = {name for _, _, names in GROUPS for name in names}
    missing = [f.name for f in standard.fields if f.name not in placed and f.name not in SET_BY_INGEST]
    if missing:
        raise StandardError(f"the XLSForm layout does not place: {', '.join(missing)}",
                            hint="add the fields to accord.standard.xlsform.GROUPS")
    rows: list[dict[str, Any]] = []
    for group, label, names in GROUPS:
        rows.append({"type": "begin_group", "name": group, "label": label})
        for name in names:
            f = standard.field(name)
            row: dict[str, Any] = {"type": _question_type(f), "name": f.name, "label": f.label,
                                   "required": "yes" if f.required else "", "relevant": RELEVANT.get(name, "")}
            if f.role == FieldRole.IDENTIFIER:
                row["hint"] = "Identifier: stays with your organisation; Accord replaces it before sharing."
            if f.type == FieldType.INTEGER and f.min is not None and f.max is not None:
                row["constraint"] = f". >= {f.min} and . <= {f.max}"
            if f.type in (FieldType.COUNTRY, FieldType.COUNTRIES):
                row["appearance"] = "autocomplete" if f.type == FieldType.COUNTRY else "minimal"
            rows.append(row)
        rows.append({"type": "end_group", "name": group})
    return rows


def _choice_rows(standard: Standard) -> list[dict[str, str]]:
    rows = [{"list_name": f.name, "name": c.code, "label": c.label}
            for f in standard.fields if f.codes for c in f.codes]
    rows += [{"list_name": COUNTRY_LIST, "name": c.alpha_2, "label": c.name}
             for c in sorted(pycountry.countries, key=lambda c: c.name)]
    rows.append({"list_name": COUNTRY_LIST, "name": "ZZ", "label": "Unknown"})
    return rows


def write_xlsform(standard: Standard, path: Path, form_id: str = "accord_intake") -> None:
    wb = Workbook()
    survey = wb.active
    assert survey is not None
    survey.title = "survey"
    cols = ["type", "name", "label", "hint", "required", "relevant", "constraint", "appearance"]
    survey.append(cols)
    for row in _survey_rows(standard):
        survey.append([row.get(c, "") for c in cols])
    choices = wb.create_sheet("choices")
    choices.append(["list_name", "name", "label"])
    for r in _choice_rows(standard):
        choices.append([r["list_name"], r["name"], r["label"]])
    settings = wb.create_sheet("settings")
    settings.append(["form_title", "form_id", "version"])
    settings.append([f"Accord intake ({standard.name} {standard.version})", form_id,
                     standard.version.replace(".", "")])
    wb.save(path)
    check_xlsform(path)


def check_xlsform(path: Path) -> None:
    """Convert with pyxform, as Kobo/ODK would; any problem is a StandardError."""
    from pyxform.errors import PyXFormError
    from pyxform.xls2xform import convert

    try:
        result = convert(xlsform=str(path), validate=False)
    except PyXFormError as exc:
        raise StandardError(f"the generated XLSForm is not valid: {exc}") from None
    if "<h:html" not in result.xform:
        raise StandardError("pyxform produced no XForm from the generated XLSForm")


def kobo_mapping(standard: Standard, separator: str = "/") -> dict[str, Any]:
    """The mapping file that reads an export of the generated form (group paths, space-separated multiples)."""
    fields: dict[str, Any] = {}
    for group, _, names in GROUPS:
        for name in names:
            f = standard.field(name)
            entry: dict[str, Any] = {"column": f"{group}{separator}{name}"}
            if f.type.is_multi:
                entry["split"] = " "
            fields[name] = entry
    return {"mapping_version": 1, "description": f"Exports of the Accord XLSForm ({standard.version})",
            "source": {"encoding": "auto"}, "missing_values": [""], "fields": fields}


def write_kobo_mapping(standard: Standard, path: Path) -> None:
    path.write_text("# Mapping for exports of the Accord XLSForm (docs/mapping.md).\n"
                    + yaml.safe_dump(kobo_mapping(standard), sort_keys=False), encoding="utf-8")
