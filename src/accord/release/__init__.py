"""Disclosure-controlled releases: tables (suppression), later microdata and synthetic data."""
