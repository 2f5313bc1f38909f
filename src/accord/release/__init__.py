"""Release stage: disclosure risk, anonymised microdata (and, from other work, tables)."""
