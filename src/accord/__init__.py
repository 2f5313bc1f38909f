"""Accord: joint, privacy-preserving data collection and research on migrant protection.

The pipeline runs one way: standard -> ingest -> protect -> store -> link -> release -> research.
See ARCHITECTURE.md for the map.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
