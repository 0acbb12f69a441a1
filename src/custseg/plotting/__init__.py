"""Figures of a segmentation: :mod:`.data` computes what a figure shows, :mod:`.draw` draws it.

The split follows pymc-marketing (``clv/utils.py`` computes, ``clv/plotting.py`` draws): figure
data are plain arrays and dicts, tested as numbers; plot functions draw them on the axes they
are given and return those axes. :mod:`custseg.report` creates, saves and closes the figures.

Examples
--------
>>> import numpy as np
>>> from matplotlib.figure import Figure
>>> from custseg.plotting import box_stats, plot_rfm_boxplots
>>> x = np.array([1.0, 2, 3, 4, 100])
>>> stats = {"monetary": [box_stats(x, "All"), box_stats(x[x < 50], "Non-outliers")]}
>>> [ax] = plot_rfm_boxplots(stats, axes=[Figure().add_subplot()])
>>> ax.get_title()
'Monetary'
"""

from __future__ import annotations

from .data import (
    Projection,
    box_stats,
    histogram_data,
    is_skewed,
    principal_components,
    profile_ratios,
    sample_indices,
    silhouette_values,
)
from .draw import (
    FEATURE_LABELS,
    SEGMENT_PALETTE,
    feature_labels,
    plain_text,
    plot_dendrogram,
    plot_elbow,
    plot_information_criteria,
    plot_k_metrics,
    plot_ledger,
    plot_merge_heights,
    plot_pca,
    plot_rfm_boxplots,
    plot_rfm_histograms,
    plot_scatter_2d,
    plot_scatter_3d,
    plot_segment_means,
    plot_segment_profile,
    plot_segment_shares,
    plot_silhouette,
    segment_colors,
)

__all__ = [
    "FEATURE_LABELS",
    "SEGMENT_PALETTE",
    "Projection",
    "box_stats",
    "feature_labels",
    "histogram_data",
    "is_skewed",
    "plain_text",
    "plot_dendrogram",
    "plot_elbow",
    "plot_information_criteria",
    "plot_k_metrics",
    "plot_ledger",
    "plot_merge_heights",
    "plot_pca",
    "plot_rfm_boxplots",
    "plot_rfm_histograms",
    "plot_scatter_2d",
    "plot_scatter_3d",
    "plot_segment_means",
    "plot_segment_profile",
    "plot_segment_shares",
    "plot_silhouette",
    "principal_components",
    "profile_ratios",
    "sample_indices",
    "segment_colors",
    "silhouette_values",
]
