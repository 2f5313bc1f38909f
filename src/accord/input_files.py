"""Input paths a command reads whole: a device or a pipe is refused before it is opened.

`/dev/zero` given as a data, aggregate, standard, mapping or key file was read until memory ran
out (exit 70 after gigabytes), and a named pipe blocked for ever waiting for a writer. A missing
path or a directory is left to each reader's own words.
"""

from __future__ import annotations

import stat
from pathlib import Path

from accord.errors import InputFileError


def refuse_special_file(path: Path | str, what: str = "input") -> None:
    """Raise InputFileError when ``path`` exists and is neither a regular file nor a directory."""
    try:
        mode = Path(path).stat().st_mode
    except (OSError, ValueError):
        return
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise InputFileError(f"the {what} {path} is not a regular file (a device or a pipe)",
                             hint="copy what it holds to a file and give that file")
