"""What changed between two versions of the standard: fields and codes added, removed or changed."""

from __future__ import annotations

from accord.standard.model import Field, Standard


def _field_changes(old: Field, new: Field) -> list[str]:
    out: list[str] = []
    for attr in ("type", "role", "required", "htcds", "ctdc", "min", "max"):
        a, b = getattr(old, attr), getattr(new, attr)
        if a != b:
            out.append(f"{attr}: {a} -> {b}")
    added = [c for c in new.code_values if c not in old.code_values]
    removed = [c for c in old.code_values if c not in new.code_values]
    if added:
        out.append("codes added: " + ", ".join(added))
    if removed:
        out.append("codes removed: " + ", ".join(removed))
    old_x = {c.code: (c.htcds, c.ctdc) for c in old.codes or ()}
    recrossed = [c.code for c in new.codes or () if c.code in old_x and old_x[c.code] != (c.htcds, c.ctdc)]
    if recrossed:
        out.append("crosswalk changed: " + ", ".join(recrossed))
    return out


def diff_markdown(old: Standard, new: Standard) -> str:
    """Markdown list of the differences, and whether contributions of ``old`` load into ``new``."""
    lines = [f"# {old.name} {old.version} -> {new.name} {new.version}", ""]
    old_names, new_names = set(old.field_names), set(new.field_names)
    added = [f for f in new.fields if f.name not in old_names]
    removed = [f for f in old.fields if f.name not in new_names]
    lines.append(f"## Fields added ({len(added)})")
    lines += [f"- `{f.name}` ({f.type}, {f.role}{', required' if f.required else ''}): {f.label}" for f in added]
    lines += ["", f"## Fields removed ({len(removed)})"]
    lines += [f"- `{f.name}`" for f in removed]
    lines += ["", "## Fields changed"]
    changed = 0
    for f in new.fields:
        if f.name in old_names:
            changes = _field_changes(old.field(f.name), f)
            if changes:
                changed += 1
                lines.append(f"- `{f.name}`: " + "; ".join(changes))
    if not changed:
        lines.append("- none")
    old_d = {d.name for d in old.derived}
    lines += ["", "## Derived columns added"]
    lines += [f"- `{d.name}`: {d.label}" for d in new.derived if d.name not in old_d] or ["- none"]
    compatible = old.version in new.compatible_with
    lines += ["", "## Contributions",
              (f"Contributions made under {old.version} load into a {new.version} hub: new fields are "
               "empty, consent is `not_recorded`." if compatible else
               f"Contributions made under {old.version} do not load into a {new.version} hub."), ""]
    return "\n".join(lines)
