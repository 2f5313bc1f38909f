"""Differentially private synthetic microdata from measured marginals (MST-like)."""
