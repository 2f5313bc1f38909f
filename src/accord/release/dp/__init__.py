"""Differential privacy: OpenDP noise on count tables, post-processing, and the budget ledger."""
