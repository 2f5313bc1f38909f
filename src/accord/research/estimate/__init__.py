"""Multiple systems estimation: the number of people seen by no list, from the lists' overlaps.

Public API::

    table = read_counts_csv(Path("UKdat.csv"))            # or from_rows / from_memberships
    result = estimate(table, EstimateOptions(method="stepwise", bootstrap=1000))
    result.total, result.interval, result.reason, result.to_dict()

See docs/estimate.md for the method, its assumptions and what its caveats mean.
"""

from accord.research.estimate.bootstrap import BootstrapResult, bootstrap
from accord.research.estimate.design import Status, check_all_models, check_model, parse_model
from accord.research.estimate.mse import CAVEATS, EstimateOptions, MSEResult, estimate
from accord.research.estimate.select import METHODS, select
from accord.research.estimate.table import (
    CaptureTable,
    CaptureTableError,
    from_memberships,
    from_rows,
    merge_small_lists,
    read_counts_csv,
)

__all__ = [
    "CAVEATS",
    "METHODS",
    "BootstrapResult",
    "CaptureTable",
    "CaptureTableError",
    "EstimateOptions",
    "MSEResult",
    "Status",
    "bootstrap",
    "check_all_models",
    "check_model",
    "estimate",
    "from_memberships",
    "from_rows",
    "merge_small_lists",
    "parse_model",
    "read_counts_csv",
    "select",
]
