"""Releases: disclosure-controlled tables, differentially private statistics and synthetic data."""
