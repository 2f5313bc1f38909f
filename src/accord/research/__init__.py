"""Research on the linked hub data: indicators, reports, estimates."""
