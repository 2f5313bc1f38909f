"""k-anonymous, l-diverse microdata: ARX hierarchies, optimal lattice search, independent check."""

from accord.release.anonymise.api import AnonymisationResult, Utility, anonymise
from accord.release.anonymise.check import CheckResult, check_release
from accord.release.anonymise.engine import PrivacyModel, build_problem
from accord.release.anonymise.hierarchy import (
    Hierarchy,
    HierarchyError,
    load_hierarchies,
    make_hierarchy,
    read_arx_hierarchy,
)
from accord.release.anonymise.search import exhaustive_search, optimal_search

__all__ = [
    "AnonymisationResult",
    "CheckResult",
    "Hierarchy",
    "HierarchyError",
    "PrivacyModel",
    "Utility",
    "anonymise",
    "build_problem",
    "check_release",
    "exhaustive_search",
    "load_hierarchies",
    "make_hierarchy",
    "optimal_search",
    "read_arx_hierarchy",
]
