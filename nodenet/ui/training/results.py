"""What a finished run shows, computed by the Qt-free :mod:`nodenet.reports` (kept importable
from here for the GUI's modules)."""

from nodenet.reports import (
    HISTOGRAM_BINS,
    SAMPLE_COUNT,
    head_report,
    histograms,
    image_shape,
    predicted_labels,
    sample_prediction,
    summarize,
)

__all__ = [
    "HISTOGRAM_BINS",
    "SAMPLE_COUNT",
    "head_report",
    "histograms",
    "image_shape",
    "predicted_labels",
    "sample_prediction",
    "summarize",
]
