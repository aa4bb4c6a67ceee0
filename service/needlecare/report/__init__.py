"""One profile's history as a self-contained HTML page: sessions, reminders, skin, products.

Importing this package imports matplotlib, so only ``needlecare report`` does, at
run time: the daemon never pays for it.
"""

from needlecare.report.gather import Report, ReportSource, gather
from needlecare.report.page import render_html

__all__ = ["Report", "ReportSource", "gather", "render_html"]
