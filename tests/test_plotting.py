"""Figures tested as data: titles, labels, numbers of bars, boxes, points and lines."""

from __future__ import annotations

import io

import numpy as np
import pytest
from matplotlib.collections import PathCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from custseg.cluster import KSelection
from custseg.plotting import (
    box_stats,
    histogram_data,
    plain_text,
    plot_elbow,
    plot_information_criteria,
    plot_k_metrics,
    plot_ledger,
    plot_merge_heights,
    plot_pca,
    plot_rfm_boxplots,
    plot_rfm_histograms,
    plot_scatter_3d,
    plot_segment_means,
    plot_segment_profile,
    plot_segment_shares,
    plot_silhouette,
    principal_components,
    profile_ratios,
    segment_colors,
    silhouette_values,
)

NAMES = {0: "Champions", 1: "Needs attention", 2: "Hibernating"}
SEL = KSelection(
    method="knee",
    k_values=[1, 2, 3, 4, 5],
    sse=[100.0, 50.0, 20.0, 15.0, 12.0],
    silhouette=[None, 0.6, 0.5, 0.45, 0.4],
    calinski_harabasz=[None, 300.0, 500.0, 450.0, 400.0],
    davies_bouldin=[None, 0.8, 0.6, 0.7, 0.9],
    knee=3,
    k=3,
)


def _ax(projection: str | None = None):  # type: ignore[no-untyped-def]
    fig = Figure(layout="constrained")
    return fig.add_subplot(projection=projection) if projection else fig.add_subplot()


def _axes(n: int) -> list:  # type: ignore[type-arg]
    return list(Figure(figsize=(9, 3), layout="constrained").subplots(1, n))


def _bars(ax) -> list[Rectangle]:  # type: ignore[no-untyped-def]
    return [p for p in ax.patches if isinstance(p, Rectangle)]


def test_plot_ledger_one_bar_per_step() -> None:
    ledger = {
        "rows_read": 100,
        "rows_used": 70,
        "rows_dropped": {"missing_customer": 20, "cancellation": 10, "duplicate": 0},
    }
    ax = plot_ledger(ledger, ax=_ax())
    assert ax.get_title() == "Where the rows went"
    assert len(_bars(ax)) == 4  # read, two non-zero drops, used
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0] == "Rows read" and labels[-1] == "Rows used"
    assert any("missing customer" in x for x in labels)
    widths = [b.get_width() for b in _bars(ax)]
    assert widths == [100, 20, 10, 70]


def test_plot_rfm_boxplots_two_boxes_per_feature() -> None:
    rng = np.random.default_rng(0)
    x = rng.lognormal(size=500)
    stats = {
        f: [box_stats(x, "All"), box_stats(x[x < 5], "Non-outliers")]
        for f in ("recency", "frequency", "monetary")
    }
    axes = plot_rfm_boxplots(stats, log={"monetary": True}, axes=_axes(3))
    assert [a.get_title() for a in axes] == ["Recency", "Frequency", "Monetary"]
    for a in axes:
        assert len([p for p in a.patches]) == 2  # two filled boxes
        assert [t.get_text() for t in a.get_xticklabels()] == ["All", "Non-outliers"]
    assert axes[2].get_yscale() == "log" and axes[0].get_yscale() == "linear"


def test_box_stats_samples_fliers_but_keeps_extremes() -> None:
    v = np.concatenate([np.random.default_rng(0).normal(size=10_000), np.arange(100.0, 1100.0)])
    s = box_stats(v, "all", max_fliers=50)
    assert len(s["fliers"]) == 50
    assert s["fliers"].max() == v.max()


def test_plot_rfm_histograms_log_axis_where_asked() -> None:
    rng = np.random.default_rng(1)
    m = rng.lognormal(5, 2, size=1000)
    r = rng.integers(1, 300, size=1000).astype(float)
    hists = {
        "recency": (*histogram_data(r, log=False), False),
        "monetary": (*histogram_data(m, log=True), True),
    }
    a, b = plot_rfm_histograms(hists, axes=_axes(2))
    assert a.get_xscale() == "linear" and b.get_xscale() == "log"
    assert "log scale" in b.get_xlabel() and a.get_ylabel() == "Customers"
    assert sum(histogram_data(m, log=True)[1]) == 1000


def test_plot_elbow_marks_knee_and_chosen_k() -> None:
    ax = plot_elbow(SEL, ax=_ax())
    assert ax.get_title() == "Elbow method"
    assert ax.get_xlabel() == "Number of clusters k"
    sse_line = ax.lines[0]
    assert list(sse_line.get_ydata()) == SEL.sse
    knee = [ln for ln in ax.lines if ln.get_label().startswith("knee")]
    assert len(knee) == 1 and list(knee[0].get_xdata()) == [3, 3]
    assert any(ln.get_label().startswith("chosen") for ln in ax.lines)


def test_plot_elbow_without_knee_has_no_knee_line() -> None:
    sel = KSelection(
        "silhouette", [1, 2], [2.0, 1.0], [None, 0.5], [None, 1.0], [None, 1.0], knee=None, k=2
    )
    ax = plot_elbow(sel, ax=_ax())
    assert not [ln for ln in ax.lines if ln.get_label().startswith("knee")]


def test_plot_k_metrics_best_k_per_score() -> None:
    axes = plot_k_metrics(SEL, axes=_axes(3))
    assert [a.get_title().split(" (")[0] for a in axes] == [
        "Silhouette",
        "Calinski-Harabasz",
        "Davies-Bouldin",
    ]
    best = [next(ln for ln in a.lines if ln.get_label().startswith("best")) for a in axes]
    assert [int(b.get_xdata()[0]) for b in best] == [2, 3, 3]
    assert len(axes[0].lines[0].get_xdata()) == 4  # k = 1 has no silhouette


def test_plot_silhouette_one_band_per_segment() -> None:
    labels = np.array([0] * 5 + [1] * 7 + [2] * 3)
    values = np.linspace(-0.2, 0.9, 15)
    ax = plot_silhouette(values, labels, names=NAMES, average=0.35, ax=_ax())
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 3
    assert [t.get_text() for t in ax.get_yticklabels()] == list(NAMES.values())
    assert ax.get_xlabel() == "Silhouette coefficient"


def test_plot_segment_means_one_bar_per_segment() -> None:
    means = {
        "recency": [20.0, 50.0, 250.0],
        "frequency": [17.0, 3.0, 1.5],
        "monetary": [11000.0, 1000.0, 400.0],
    }
    axes = plot_segment_means(means, clusters=[0, 1, 2], names=NAMES, axes=_axes(3))
    assert [a.get_title() for a in axes] == ["Mean recency", "Mean frequency", "Mean monetary"]
    for a, vals in zip(axes, means.values(), strict=True):
        bars = _bars(a)
        assert [b.get_height() for b in bars] == vals
    colors = segment_colors([0, 1, 2])
    got = [b.get_facecolor() for b in _bars(axes[0])]
    from matplotlib.colors import to_rgba

    assert got == [to_rgba(colors[c]) for c in (0, 1, 2)]


def test_plot_segment_profile_annotates_each_cell() -> None:
    r = np.array([[0.2, 4.0, 5.7], [0.5, 0.7, 0.5], [2.7, 0.3, 0.2]])
    ax = plot_segment_profile(r, segment_names=list(NAMES.values()), ax=_ax())
    assert ax.images[0].get_array().shape == (3, 3)
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 9 and "5.70×" in texts


def test_plot_segment_shares_two_bars_per_segment() -> None:
    ax = plot_segment_shares(
        [0.1, 0.65, 0.25], [0.6, 0.35, 0.05], clusters=[0, 1, 2], names=NAMES, ax=_ax()
    )
    assert len(_bars(ax)) == 6
    assert ax.get_title() == "Customers and revenue per segment"


def test_plot_scatter_3d_one_collection_per_segment_on_log_axes() -> None:
    rng = np.random.default_rng(2)
    pts = np.column_stack(
        [rng.integers(1, 300, 60), rng.integers(1, 50, 60), rng.lognormal(6, 1, 60)]
    ).astype(float)
    labels = np.repeat([0, 1, 2], 20)
    ax = plot_scatter_3d(pts, labels, names=NAMES, log=[False, True, True], ax=_ax("3d"))
    assert ax.name == "3d"
    assert len([c for c in ax.collections if isinstance(c, PathCollection)]) == 3
    assert ax.get_zlabel() == "Monetary (log)" and ax.get_xlabel() == "Recency"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(NAMES.values())


def test_plot_pca_points_and_centres() -> None:
    rng = np.random.default_rng(3)
    pts = rng.normal(size=(30, 2))
    labels = np.repeat([0, 1, 2], 10)
    ax = plot_pca(
        pts, labels, names=NAMES, explained=[0.6, 0.3], centers=np.zeros((3, 2)), ax=_ax()
    )
    cols = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(cols) == 4
    assert sum(len(c.get_offsets()) for c in cols[:3]) == 30
    assert "60%" in ax.get_xlabel()


def test_dollar_signs_in_names_are_literal_text() -> None:
    names = {0: "$5 deals $$", 1: "Spend $100"}
    assert plain_text("$5") == r"\$5"
    fig = Figure(layout="constrained")
    ax = plot_segment_shares(
        [0.5, 0.5], [0.7, 0.3], clusters=[0, 1], names=names, ax=fig.add_subplot()
    )
    fig.savefig(io.BytesIO(), format="png")  # mathtext would fail on "$$"
    assert ax.get_yticklabels()[0].get_text() == r"\$5 deals \$\$"


def test_plot_without_axes_creates_a_figure() -> None:
    import matplotlib.pyplot as plt

    ax = plot_elbow(SEL)
    try:
        assert ax.figure is not None
    finally:
        plt.close(ax.figure)  # type: ignore[arg-type]


def test_multi_panel_plot_rejects_wrong_number_of_axes() -> None:
    with pytest.raises(ValueError, match="3 Axes"):
        plot_k_metrics(SEL, axes=_axes(2))


def test_plot_merge_heights_marks_the_k_used() -> None:
    ax = plot_merge_heights([1, 2, 3, 4], [None, 90.0, 40.0, 35.0], k=2, ax=_ax())
    line = ax.lines[0]
    assert list(line.get_xdata()) == [2, 3, 4]  # k = 1 has no merge
    assert [ln.get_label() for ln in ax.lines][-1] == "k used (2)"
    assert ax.get_title() == "Ward merge heights"


def test_plot_information_criteria_stars_the_lowest_bic() -> None:
    bic, aic = [30.0, 12.0, 15.0], [29.0, 10.0, 11.0]
    ax = plot_information_criteria([1, 2, 3], bic, aic, k=2, ax=_ax())
    star = next(ln for ln in ax.lines if ln.get_label().startswith("lowest BIC"))
    assert list(star.get_xdata()) == [2] and star.get_label() == "lowest BIC (k = 2)"
    assert [ln.get_label() for ln in ax.lines][:2] == ["BIC", "AIC"]


def test_segment_plots_leave_empty_segments_blank() -> None:
    means = {"recency": [20.0, float("nan")], "monetary": [100.0, float("nan")]}
    axes = plot_segment_means(means, clusters=[0, 1], names=NAMES, axes=_axes(2))
    assert [t.get_text() for t in axes[0].texts] == ["20.0", ""]
    ax = plot_segment_profile(
        np.array([[0.5, 2.0], [np.nan, np.nan]]),
        segment_names=["A", "B"],
        features=["recency", "monetary"],
        ax=_ax(),
    )
    assert [t.get_text() for t in ax.texts] == ["0.50×", "2.00×"]


# --- figure data ---------------------------------------------------------------------------


def test_box_stats_of_no_values_is_empty() -> None:
    s = box_stats(np.array([]), "none")
    assert np.isnan(s["med"]) and len(s["fliers"]) == 0 and s["label"] == "none"


def test_box_stats_whiskers_and_fliers_as_tukey() -> None:
    v = np.concatenate([np.arange(1.0, 101.0), [1000.0, -500.0]])
    s = box_stats(v, "all")
    q1, q3 = np.percentile(v, [25, 75])
    assert s["q1"] == q1 and s["q3"] == q3
    assert s["whislo"] == 1.0 and s["whishi"] == 100.0
    assert sorted(s["fliers"].tolist()) == [-500.0, 1000.0]


def test_silhouette_values_match_scikit_learn() -> None:
    from sklearn.metrics import silhouette_samples

    rng = np.random.default_rng(4)
    X = rng.lognormal(size=(700, 3))
    labels = rng.integers(0, 4, 700)
    labels[0] = 9  # a customer alone in its segment: 0, as scikit-learn
    got = silhouette_values(X, labels)
    assert np.allclose(got, silhouette_samples(X, labels), atol=1e-12)
    assert got[0] == 0.0


def test_principal_components_match_scikit_learn() -> None:
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(5)
    X = rng.normal(size=(500, 3)) @ np.array([[3.0, 0, 0], [1, 1, 0], [0, 0.5, 0.2]])
    want = PCA(n_components=2, random_state=0).fit(X)
    got = principal_components(X)
    assert np.allclose(got.components, want.components_, atol=1e-10)  # same signs too
    assert np.allclose(got.explained, want.explained_variance_ratio_)
    assert np.allclose(got.transform(X), want.transform(X), atol=1e-9)


def test_principal_components_of_constant_data_explain_nothing() -> None:
    got = principal_components(np.ones((5, 3)))
    assert all(np.isnan(e) for e in got.explained)


def test_profile_ratios_divide_by_the_average_customer() -> None:
    r = profile_ratios(
        {"recency": [10.0, 40.0], "monetary": [5.0, 0.0]}, {"recency": 20.0, "monetary": 0.0}
    )
    assert r.tolist() == [[0.5, 5.0], [2.0, 0.0]]
