"""Published tables in the formats agencies take in: SDMX-CSV with its structure (SDMX-ML 2.1),
HXL-tagged CSV for HDX, a JSON Schema and a Frictionless data package.

Input is what the hub already published (`accord stats --json`, or any file of the same shape):
only published values ever reach these files, never a count the release withheld. The structure
follows the dimensions of UNODC's trafficking-in-persons data (GLOTIP: reference area, period,
indicator, sex, age, form of exploitation, citizenship); a published table becomes one dataflow,
and a dimension a table does not break down by is its total, `_T`.

Written by hand: the SDMX files are a few fixed elements and sdmx1 (which reads them back in the
tests) is a large dependency to carry at run time for that.
"""

from __future__ import annotations

import csv
import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pycountry

from accord.errors import AccordError
from accord.standard import load_standard
from accord.standard.tables import standard_tables

AGENCY = "ACCORD"
VERSION = "1.0"
DSD_ID = "DSD_TIP"
TOTAL = "_T"
SUPPRESSED = "C"  # SDMX CONF_STATUS: confidential, not for publication
FREE = "F"  # SDMX CONF_STATUS: free
NS = {"mes": "http://www.sdmx.org/resources/sdmxml/schemas/v2_1/message",
      "str": "http://www.sdmx.org/resources/sdmxml/schemas/v2_1/structure",
      "com": "http://www.sdmx.org/resources/sdmxml/schemas/v2_1/common",
      "gen": "http://www.sdmx.org/resources/sdmxml/schemas/v2_1/data/generic"}

# Accord column -> SDMX dimension (UNODC's names where GLOTIP has one).
DIMENSIONS: dict[str, tuple[str, str]] = {
    "sex": ("SEX", "Sex"),
    "age_band_ctdc": ("AGE", "Age"), "age_group": ("AGE", "Age"), "majority_status": ("AGE", "Age"),
    # the focus bands (issue 18): adolescents, youth, young people; SDMX age codes (Y10T14, Y_GE20)
    "age_adolescent": ("AGE", "Age"), "age_youth": ("AGE", "Age"), "age_young_people": ("AGE", "Age"),
    "gbv_incident_type": ("GBV_INCIDENT_TYPE", "GBV incident type (GBVIMS)"),
    "rh_services_received": ("RH_SERVICE", "Reproductive-health service received"),
    "type_of_exploitation": ("FORM_OF_EXPLOITATION", "Form of exploitation"),
    "citizenship": ("CITIZENSHIP", "Citizenship"),
    "case_type": ("CASE_TYPE", "Case type"),
    "migration_status": ("MIGRATION_STATUS", "Migration status"),
    "rh_needs": ("RH_NEED", "Reproductive-health need"),
    "registration_year": ("REGISTRATION_YEAR", "Year of registration"),
    "referred_to": ("SERVICE_REFERRED", "Service referred to"),
    "services_received": ("SERVICE_RECEIVED", "Service received"),
    "sexual_violence_survivor": ("SEXUAL_VIOLENCE_SURVIVOR", "Survivor of sexual violence"),
}
FIXED = (("REF_AREA", "Reference area"), ("INDICATOR", "Indicator"))
SEX_CODES = {"female": "F", "male": "M", "unknown": "_U"}
EXPLOITATION = {"sexual_exploitation": "SEXUAL_EXPLOITATION", "forced_labour": "FORCED_LABOUR"}
HXL = {"SEX": "#group+sex", "AGE": "#group+age", "FORM_OF_EXPLOITATION": "#indicator+type",
       "CITIZENSHIP": "#country+code+nationality", "REF_AREA": "#country+code", "TIME_PERIOD": "#date+year",
       "INDICATOR": "#indicator+code", "OBS_VALUE": "#affected+num", "CONF_STATUS": "#status+conf",
       "CASE_TYPE": "#group+case_type", "MIGRATION_STATUS": "#group+migration",
       "RH_NEED": "#indicator+need", "GBV_INCIDENT_TYPE": "#indicator+gbv_type",
       "RH_SERVICE": "#indicator+service", "SERVICE_REFERRED": "#indicator+service+referred",
       "SERVICE_RECEIVED": "#indicator+service+received",
       "SEXUAL_VIOLENCE_SURVIVOR": "#group+survivor_sv", "REGISTRATION_YEAR": "#date+year+registration",
       "TABLE": "#meta+table"}


def _age_code(code: str) -> str:
    if code == "minor":
        return "Y0T17"
    if code == "adult":
        return "Y_GE18"
    m = re.fullmatch(r"(\d+)-+(\d+)", code)
    if m:
        return f"Y{m.group(1)}T{m.group(2)}"
    m = re.fullmatch(r"(\d+)\+", code)
    return f"Y_GE{m.group(1)}" if m else "_U"


def _sdmx_code(column: str, code: str) -> str:
    if column == "sex":
        return SEX_CODES.get(code, "_O")  # grouped transgender / non-conforming codes
    if column in ("age_band_ctdc", "age_group", "majority_status", "age_adolescent", "age_youth",
                  "age_young_people"):
        return _age_code(code)
    if column == "citizenship":
        c = pycountry.countries.get(alpha_2=code)
        return c.alpha_3 if c is not None else "_U"
    if column == "type_of_exploitation":
        return EXPLOITATION.get(code, code.upper())
    return re.sub(r"[^A-Za-z0-9_@$-]", "_", code.upper()) or "_U"


@dataclass(frozen=True)
class Observation:
    dataflow: str
    key: dict[str, str]
    value: float | int | None


@dataclass(frozen=True)
class Export:
    dataflows: dict[str, str]  # id -> title
    dimensions: tuple[tuple[str, str], ...]  # (id, name), in key order, TIME_PERIOD last
    codes: dict[str, dict[str, str]]  # dimension -> code -> label
    observations: tuple[Observation, ...]
    skipped: tuple[str, ...] = ()  # tables with a dimension UNODC's structure has no place for


def _cells(values: Any, depth: int) -> list[tuple[tuple[int, ...], Any]]:
    if depth == 0:
        return [((), values)]
    return [((i, *rest), v) for i, sub in enumerate(values) for rest, v in _cells(sub, depth - 1)]


def _subpopulations() -> dict[str, tuple[tuple[str, str, str], ...]]:
    """Table id -> (column, code, label) of the one code each filter of the standard's tables
    keeps (tables.yaml ``where``); a filter on several codes has no single key and is left out."""
    standard = load_standard()
    out: dict[str, tuple[tuple[str, str, str], ...]] = {}
    for t in standard_tables(standard):
        parts = []
        for column, kept in t.where:
            if len(kept) == 1 and column in DIMENSIONS:
                label = (standard.field(column).label_of(kept[0]) if column in standard.field_names
                         else standard.derived_field(column).label_of(kept[0]))
                parts.append((column, kept[0], label))
        if parts:
            out[t.id] = tuple(parts)
    return out


def build_export(published: dict[str, Any], period: str, ref_area: str = TOTAL,
                 indicator: str = "DETECTED_VICTIMS") -> Export:
    """The observations of every published table, keyed by the UNODC-shaped dimensions."""
    if not re.fullmatch(r"\d{4}(-\d{2})?", period):
        raise AccordError(f"period '{period}' is not a year (2023) or a month (2023-06)",
                          hint="give the reporting period the hub's data cover")
    tables = published.get("tables") if isinstance(published, dict) else None
    if not isinstance(tables, list) or not tables:
        raise AccordError("the file holds no published tables",
                          hint="give the JSON that `accord stats --json` writes")
    dims: dict[str, str] = dict(FIXED)
    codes: dict[str, dict[str, str]] = {"REF_AREA": {ref_area: "All areas of the collaborative"
                                                     if ref_area == TOTAL else ref_area},
                                        "INDICATOR": {indicator: indicator.replace("_", " ").capitalize()}}
    flows: dict[str, str] = {}
    obs: list[Observation] = []
    skipped: list[str] = []
    subpopulations = _subpopulations()
    for t in tables:
        table_dims = t["dims"]
        if any(d["name"] not in DIMENSIONS for d in table_dims):
            skipped.append(str(t["id"]))  # e.g. the partner-overlap table: not a count of victims
            continue
        flow = "TIP_" + re.sub(r"[^A-Za-z0-9_]", "_", str(t["id"])).upper()
        flows[flow] = str(t.get("title", t["id"]))
        for d in table_dims:
            sid, sname = DIMENSIONS[d["name"]]
            dims.setdefault(sid, sname)
            cl = codes.setdefault(sid, {TOTAL: "Total"})
            for code, label in zip(d["codes"], d["labels"], strict=True):
                cl.setdefault(_sdmx_code(d["name"], code), str(label))
        # A table of a subpopulation (GBV cases only, say) carries it in the key: the dimension
        # it filters on holds that code instead of the total.
        fixed: dict[str, str] = {}
        for column, code, label in subpopulations.get(str(t["id"]), ()):
            sid, sname = DIMENSIONS[column]
            dims.setdefault(sid, sname)
            codes.setdefault(sid, {TOTAL: "Total"}).setdefault(_sdmx_code(column, code), label)
            fixed[sid] = _sdmx_code(column, code)
        for index, value in _cells(t["values"], len(table_dims)):
            key = {"REF_AREA": ref_area, "INDICATOR": indicator, **fixed}
            for d, i in zip(table_dims, index, strict=True):
                sid = DIMENSIONS[d["name"]][0]
                key[sid] = TOTAL if i == len(d["codes"]) else _sdmx_code(d["name"], d["codes"][i])
            key["TIME_PERIOD"] = period
            obs.append(Observation(flow, key, value if isinstance(value, int | float) else None))
    for sid in dims:
        codes.setdefault(sid, {TOTAL: "Total"}).setdefault(TOTAL, "Total")
    order = (*dims.items(), ("TIME_PERIOD", "Time period"))
    full = tuple(Observation(o.dataflow, {d: o.key.get(d, TOTAL) for d, _ in order}, o.value) for o in obs)
    if not flows:
        raise AccordError("none of the published tables fits the trafficking-in-persons structure",
                          hint="publish the standard tables with `accord stats`")
    return Export(flows, order, codes, full, tuple(skipped))


def write_sdmx_csv(export: Export, path: Path) -> None:
    """SDMX-CSV 2.0.0: one row per observation; a hidden cell has no value and CONF_STATUS C."""
    dims = [d for d, _ in export.dimensions]
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["STRUCTURE", "STRUCTURE_ID", "ACTION", *dims, "OBS_VALUE", "CONF_STATUS"])
        for o in export.observations:
            w.writerow(["dataflow", f"{AGENCY}:{o.dataflow}({VERSION})", "I", *(o.key[d] for d in dims),
                        "" if o.value is None else o.value, SUPPRESSED if o.value is None else FREE])


def _name(parent: ET.Element, text: str) -> None:
    el = ET.SubElement(parent, f"{{{NS['com']}}}Name")
    el.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
    el.text = text


def _ref(parent: ET.Element, **attrs: str) -> None:
    ET.SubElement(parent, "Ref", {**attrs, "agencyID": AGENCY})


def write_dsd(export: Export, path: Path) -> None:
    """SDMX-ML 2.1 structure message: code lists, concepts, the data structure, one dataflow per table."""
    for prefix, uri in NS.items():
        ET.register_namespace(prefix, uri)
    s, m = NS["str"], NS["mes"]
    root = ET.Element(f"{{{m}}}Structure")
    header = ET.SubElement(root, f"{{{m}}}Header")
    ET.SubElement(header, f"{{{m}}}ID").text = "ACCORD_TIP_STRUCTURE"
    ET.SubElement(header, f"{{{m}}}Test").text = "false"
    ET.SubElement(header, f"{{{m}}}Prepared").text = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    ET.SubElement(header, f"{{{m}}}Sender", id=AGENCY)
    structures = ET.SubElement(root, f"{{{m}}}Structures")
    flows = ET.SubElement(structures, f"{{{s}}}Dataflows")
    for fid, title in export.dataflows.items():
        df = ET.SubElement(flows, f"{{{s}}}Dataflow", id=fid, agencyID=AGENCY, version=VERSION)
        _name(df, title)
        _ref(ET.SubElement(df, f"{{{s}}}Structure"), id=DSD_ID, version=VERSION, package="datastructure",
             **{"class": "DataStructure"})
    cls = ET.SubElement(structures, f"{{{s}}}Codelists")
    codelists = {**export.codes, "CONF_STATUS": {FREE: "Free", SUPPRESSED: "Confidential (suppressed)"}}
    for dim, cl_codes in codelists.items():
        cl = ET.SubElement(cls, f"{{{s}}}Codelist", id=f"CL_{dim}", agencyID=AGENCY, version=VERSION)
        _name(cl, dim.replace("_", " ").capitalize())
        for code, label in cl_codes.items():
            _name(ET.SubElement(cl, f"{{{s}}}Code", id=code), label)
    concepts = ET.SubElement(ET.SubElement(structures, f"{{{s}}}Concepts"), f"{{{s}}}ConceptScheme",
                             id="CS_TIP", agencyID=AGENCY, version=VERSION)
    _name(concepts, "Trafficking in persons concepts")
    names = dict(export.dimensions) | {"OBS_VALUE": "Observation value", "CONF_STATUS": "Confidentiality status"}
    for cid, label in names.items():
        _name(ET.SubElement(concepts, f"{{{s}}}Concept", id=cid), label)

    def identity(parent: ET.Element, cid: str) -> None:
        _ref(ET.SubElement(parent, f"{{{s}}}ConceptIdentity"), id=cid, maintainableParentID="CS_TIP",
             maintainableParentVersion=VERSION, package="conceptscheme", **{"class": "Concept"})

    def enumeration(parent: ET.Element, dim: str) -> None:
        rep = ET.SubElement(parent, f"{{{s}}}LocalRepresentation")
        _ref(ET.SubElement(rep, f"{{{s}}}Enumeration"), id=f"CL_{dim}", version=VERSION, package="codelist",
             **{"class": "Codelist"})

    dsd = ET.SubElement(ET.SubElement(structures, f"{{{s}}}DataStructures"), f"{{{s}}}DataStructure",
                        id=DSD_ID, agencyID=AGENCY, version=VERSION)
    _name(dsd, "Trafficking in persons: detected victims (UNODC GLOTIP dimensions)")
    comps = ET.SubElement(dsd, f"{{{s}}}DataStructureComponents")
    dl = ET.SubElement(comps, f"{{{s}}}DimensionList", id="DimensionDescriptor")
    for pos, (dim, _) in enumerate(export.dimensions, start=1):
        if dim == "TIME_PERIOD":
            td = ET.SubElement(dl, f"{{{s}}}TimeDimension", id=dim, position=str(pos))
            identity(td, dim)
            rep = ET.SubElement(td, f"{{{s}}}LocalRepresentation")
            ET.SubElement(rep, f"{{{s}}}TextFormat", textType="ObservationalTimePeriod")
            continue
        d = ET.SubElement(dl, f"{{{s}}}Dimension", id=dim, position=str(pos))
        identity(d, dim)
        enumeration(d, dim)
    al = ET.SubElement(comps, f"{{{s}}}AttributeList", id="AttributeDescriptor")
    att = ET.SubElement(al, f"{{{s}}}Attribute", id="CONF_STATUS", assignmentStatus="Mandatory")
    identity(att, "CONF_STATUS")
    enumeration(att, "CONF_STATUS")
    ET.SubElement(ET.SubElement(att, f"{{{s}}}AttributeRelationship"), f"{{{s}}}PrimaryMeasure").text = "OBS_VALUE"
    ml = ET.SubElement(comps, f"{{{s}}}MeasureList", id="MeasureDescriptor")
    identity(ET.SubElement(ml, f"{{{s}}}PrimaryMeasure", id="OBS_VALUE"), "OBS_VALUE")
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def write_sdmx_ml_data(export: Export, path: Path) -> None:
    """SDMX-ML 2.1 generic data message: one data set per published table (``setID`` = its
    dataflow), every observation with its full key against ``DSD_TIP``; a hidden cell's value is
    NaN (SDMX's missing value) with CONF_STATUS C, so no withheld count is ever written."""
    for prefix, uri in NS.items():
        ET.register_namespace(prefix, uri)
    m, g, c = NS["mes"], NS["gen"], NS["com"]
    root = ET.Element(f"{{{m}}}GenericData")
    header = ET.SubElement(root, f"{{{m}}}Header")
    ET.SubElement(header, f"{{{m}}}ID").text = "ACCORD_TIP_DATA"
    ET.SubElement(header, f"{{{m}}}Test").text = "false"
    ET.SubElement(header, f"{{{m}}}Prepared").text = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    ET.SubElement(header, f"{{{m}}}Sender", id=AGENCY)
    st = ET.SubElement(header, f"{{{m}}}Structure", structureID=DSD_ID,
                       dimensionAtObservation="AllDimensions")
    _ref(ET.SubElement(st, f"{{{c}}}Structure"), id=DSD_ID, version=VERSION)
    dims = [d for d, _ in export.dimensions]
    by_flow: dict[str, list[Observation]] = {}
    for o in export.observations:
        by_flow.setdefault(o.dataflow, []).append(o)
    for flow, observations in by_flow.items():
        ds = ET.SubElement(root, f"{{{m}}}DataSet", structureRef=DSD_ID, setID=flow,
                           action="Information")
        for o in observations:
            obs = ET.SubElement(ds, f"{{{g}}}Obs")
            key = ET.SubElement(obs, f"{{{g}}}ObsKey")
            for d in dims:
                ET.SubElement(key, f"{{{g}}}Value", id=d, value=o.key[d])
            ET.SubElement(obs, f"{{{g}}}ObsValue", value="NaN" if o.value is None else str(o.value))
            attrs = ET.SubElement(obs, f"{{{g}}}Attributes")
            ET.SubElement(attrs, f"{{{g}}}Value", id="CONF_STATUS",
                          value=SUPPRESSED if o.value is None else FREE)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def write_hxl_csv(export: Export, path: Path) -> None:
    """CSV with an HXL hashtag row under the header (for HDX); a hidden cell is empty."""
    dims = [d for d, _ in export.dimensions]
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["TABLE", *dims, "OBS_VALUE", "CONF_STATUS"])
        w.writerow([HXL["TABLE"], *(HXL.get(d, f"#meta+{d.lower()}") for d in dims), HXL["OBS_VALUE"],
                    HXL["CONF_STATUS"]])
        for o in export.observations:
            w.writerow([o.dataflow, *(o.key[d] for d in dims), "" if o.value is None else o.value,
                        SUPPRESSED if o.value is None else FREE])


def table_schema(export: Export) -> dict[str, Any]:
    """The Frictionless Table Schema of the SDMX-CSV file (code lists as enums)."""
    fields: list[dict[str, Any]] = [
        {"name": "STRUCTURE", "type": "string", "constraints": {"enum": ["dataflow"]}},
        {"name": "STRUCTURE_ID", "type": "string",
         "constraints": {"enum": [f"{AGENCY}:{f}({VERSION})" for f in export.dataflows]}},
        {"name": "ACTION", "type": "string", "constraints": {"enum": ["I"]}}]
    for dim, label in export.dimensions:
        f: dict[str, Any] = {"name": dim, "title": label, "type": "string", "constraints": {"required": True}}
        if dim in export.codes:
            f["constraints"]["enum"] = sorted(export.codes[dim])
        fields.append(f)
    fields += [{"name": "OBS_VALUE", "type": "number", "description": "empty where the cell is not published"},
               {"name": "CONF_STATUS", "type": "string", "constraints": {"enum": [FREE, SUPPRESSED]}}]
    return {"fields": fields, "missingValues": [""]}


def json_schema(export: Export) -> dict[str, Any]:
    """A JSON Schema (2020-12) for one observation of the SDMX-CSV file, read as a JSON object."""
    props: dict[str, Any] = {d: {"type": "string", **({"enum": sorted(export.codes[d])} if d in export.codes
                                                      else {})} for d, _ in export.dimensions}
    props["OBS_VALUE"] = {"type": ["number", "null"]}
    props["CONF_STATUS"] = {"enum": [FREE, SUPPRESSED]}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "Accord published observation",
            "type": "object", "properties": props, "required": list(props), "additionalProperties": False,
            "if": {"properties": {"CONF_STATUS": {"const": SUPPRESSED}}},
            "then": {"properties": {"OBS_VALUE": {"type": "null"}}}}


def export_tables(published: dict[str, Any], out: Path, period: str, ref_area: str = TOTAL) -> dict[str, Path]:
    export = build_export(published, period, ref_area)
    out.mkdir(parents=True, exist_ok=True)
    files = {"sdmx_csv": out / "tables.sdmx.csv", "sdmx_ml": out / "tables.sdmx.xml",
             "dsd": out / "structure.sdmx.xml",
             "hxl": out / "tables.hxl.csv", "json_schema": out / "observation.schema.json",
             "datapackage": out / "datapackage.json"}
    write_sdmx_csv(export, files["sdmx_csv"])
    write_dsd(export, files["dsd"])
    write_sdmx_ml_data(export, files["sdmx_ml"])
    write_hxl_csv(export, files["hxl"])
    files["json_schema"].write_text(json.dumps(json_schema(export), indent=2), encoding="utf-8")
    package = {
        "name": "accord-published-tables", "title": "Accord published tables",
        "profile": "tabular-data-package",
        "description": "Tables as the hub published them (hidden cells empty, CONF_STATUS C). "
                       + " ".join(str(n) for n in published.get("notes", [])),
        "version": str(published.get("data_version", "")), "created": datetime.now(UTC).isoformat(),
        "resources": [
            {"name": "tables-sdmx", "path": files["sdmx_csv"].name, "profile": "tabular-data-resource",
             "format": "csv", "mediatype": "text/csv", "encoding": "utf-8", "schema": table_schema(export)},
            {"name": "tables-sdmx-ml", "path": files["sdmx_ml"].name, "format": "xml",
             "mediatype": "application/vnd.sdmx.genericdata+xml;version=2.1"},
            {"name": "structure", "path": files["dsd"].name, "format": "xml",
             "mediatype": "application/vnd.sdmx.structure+xml;version=2.1"},
            {"name": "tables-hxl", "path": files["hxl"].name, "format": "csv", "mediatype": "text/csv"},
            {"name": "observation-schema", "path": files["json_schema"].name, "format": "json",
             "mediatype": "application/schema+json"},
        ],
    }
    files["datapackage"].write_text(json.dumps(package, indent=2), encoding="utf-8")
    return files
