"""Research outputs: disaggregated tables, indicators and reports over the hub store."""
