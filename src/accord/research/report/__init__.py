"""The offline HTML report: one self-contained file, inline CSS and SVG, no scripts or CDN."""

from accord.research.report.render import build_context, render_report
from accord.research.report.sections import ReportContext, ReportSection, default_sections

__all__ = ["ReportContext", "ReportSection", "build_context", "default_sections", "render_report"]
