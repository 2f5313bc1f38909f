"""``--engine`` / ``--spark-master`` / ``--spark-conf``: where a command's counting runs.

Shared by ``accord stats``, ``release tables``, ``risk``, ``anonymise`` and ``release
microdata`` (``accord link`` has its own, for the band work of blocking). The settings are
checked (a linkage secret in them is refused) before the hub or any input is read.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from accord.errors import AccordError
from accord.store.groups import EMBEDDED, GroupEngine

EngineOption = Annotated[str, typer.Option(
    "--engine", help="Where the counting runs: 'embedded' (this machine) or 'spark' (needs "
    "accord[spark] and Java 17; the same numbers).")]
SparkMasterOption = Annotated[str, typer.Option(
    "--spark-master", help="With --engine spark: the Spark master URL.")]
SparkConfOption = Annotated[list[str] | None, typer.Option(
    "--spark-conf", help="With --engine spark: a Spark setting key=value (repeatable).")]


def check_engine(engine: str, master: str, conf: list[str] | None) -> None:
    """Refuse an unknown engine or Spark settings carrying a secret, before anything is read."""
    if engine not in ("embedded", "spark"):
        raise AccordError(f"unknown engine {engine!r}", hint="use embedded or spark")
    if engine == "embedded" and not conf:
        return  # nothing of Spark's is loaded for the default engine (start-up time)
    from accord.link.spark import SparkSettings, parse_conf, refuse_secrets

    refuse_secrets(SparkSettings(master, parse_conf(conf or [])))


@contextmanager
def group_engine(engine: str, master: str, conf: list[str] | None) -> Iterator[GroupEngine]:
    """The counting engine for a command: the embedded one, or Spark for its duration."""
    check_engine(engine, master, conf)
    if engine == "embedded":
        yield EMBEDDED
        return
    from accord.link.spark import SparkSettings, parse_conf, spark_engine
    from accord.store.spark_groups import SparkGroups

    with spark_engine(SparkSettings(master, parse_conf(conf or []))) as band_engine:
        yield SparkGroups(band_engine.session)
