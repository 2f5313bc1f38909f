"""YAML reading with the C parser when the platform has it (mapping files can be long)."""

from __future__ import annotations

from typing import Any

import yaml

try:
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # PyYAML built without libyaml
    _Loader = yaml.SafeLoader


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)
