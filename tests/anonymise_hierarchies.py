"""Small ARX-style hierarchies (age, sex, region) shared by the anonymisation tests."""

from __future__ import annotations

from accord.release.anonymise import make_hierarchy

AGE_ROWS = [[str(a), f"{a // 10 * 10}-{a // 10 * 10 + 9}", "<40" if a < 40 else ">=40", "*"]
            for a in range(20, 60)]
SEX_ROWS = [["f", "*"], ["m", "*"], ["x", "*"]]
REGION_ROWS = [["FR", "Europe", "*"], ["DE", "Europe", "*"], ["NG", "Africa", "*"],
               ["GH", "Africa", "*"], ["TH", "Asia", "*"]]
HIERARCHIES = {"age": make_hierarchy("age", AGE_ROWS), "sex": make_hierarchy("sex", SEX_ROWS),
               "region": make_hierarchy("region", REGION_ROWS)}
QI = ["age", "sex", "region"]
