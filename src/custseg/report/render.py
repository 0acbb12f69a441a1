"""Figures to PNG and SVG bytes: the report's style, one measured layout, one draw per format.

Matplotlib's constrained layout would place every figure well, but it measures every artist
twice and then the draw measures the decorations again: on the demo that was most of the time
the report took. :func:`fit_layout` does the same job for the report's figures (one row of
axes, each with its colorbars) from the decorations alone: tick labels, axis labels, titles,
texts and legends, measured once at the figure's dpi. Labels are never clipped: a figure whose
ticks change once its axes are resized is measured again.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox
from PIL import Image

__all__ = ["DPI", "fit_layout", "render_figure", "report_style"]

DPI = 150
#: Space around each axes and its decorations, in inches (constrained layout's default pad).
PAD = 3 / 72

_RC: dict[str, Any] = {
    "font.size": 9,
    "axes.titlesize": 10.5,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelcolor": "#334155",
    "axes.edgecolor": "#94a3b8",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#e2e8f0",
    "grid.linewidth": 0.8,
    "xtick.color": "#475569",
    "ytick.color": "#475569",
    "legend.fontsize": 8,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "svg.fonttype": "path",
    "svg.hashsalt": "custseg",
}


@contextlib.contextmanager
def report_style() -> Iterator[None]:
    """The report's matplotlib style (fonts, colours, grid), for building and saving figures."""
    with matplotlib.rc_context(cast(Any, _RC)):
        yield


def _extent(box: Bbox, around: Bbox) -> tuple[float, float, float, float]:
    """How far ``box`` reaches beyond ``around``: left, right, bottom, top (>= 0)."""
    return (
        max(around.x0 - box.x0, 0.0),
        max(box.x1 - around.x1, 0.0),
        max(around.y0 - box.y0, 0.0),
        max(box.y1 - around.y1, 0.0),
    )


def _decorations(ax: Axes, renderer: Any) -> tuple[float, float, float, float]:
    """Room the axes' decorations need beyond its box: left, right, bottom, top (pixels).

    Tick labels, axis labels, texts and legends count; titles count for their height only,
    as in constrained layout (a long title may run over the next panel's empty top).
    """
    if ax.name == "3d":  # its labels and ticks live in the axes' own 3-D projection
        cell = ax.get_position(original=True).transformed(ax.figure.transFigure)
        return _extent(ax.get_tightbbox(renderer, for_layout_only=True) or cell, cell)
    ax.apply_aspect()  # a colorbar's box is narrower than its position
    boxes = [ax.bbox]
    for axis in (ax.xaxis, ax.yaxis):
        box = axis.get_tightbbox(renderer, for_layout_only=True)
        if box is not None:
            boxes.append(box)
    # The three titles (left, centre, right): matplotlib keeps two of them private.
    titles = (getattr(ax, name, None) for name in ("title", "_left_title", "_right_title"))
    for title in titles:
        if title is not None and title.get_visible() and title.get_text():
            box = title.get_window_extent(renderer)
            boxes.append(Bbox([[ax.bbox.x0, box.y0], [ax.bbox.x0, box.y1]]))
    boxes += [t.get_window_extent(renderer) for t in ax.texts if t.get_visible()]
    legend = ax.get_legend()
    if legend is not None:
        boxes.append(legend.get_window_extent(renderer))
    return _extent(Bbox.union([b for b in boxes if b._is_finite()]), ax.bbox)


@dataclass
class _Colorbar:
    """A colorbar to the right of its parent axes, and the room it needs there."""

    cax: Axes
    info: dict[str, Any]
    room: tuple[float, float, float, float]

    def size(self, width: float, height: float) -> tuple[float, float]:
        """Its box for a parent of ``width`` x ``height``: as tall as shrink, as wide as aspect."""
        h = self.info["shrink"] * height
        return min(self.info["fraction"] * width, h / self.info["aspect"]), h

    def extra(self, width: float, height: float) -> float:
        """Width it adds to its parent's right margin."""
        w, _ = self.size(width, height)
        return self.info["pad"] * width + self.room[0] + w + self.room[1]


@dataclass
class _Cell:
    """One grid axes: its column, the room its decorations need, its colorbars."""

    ax: Axes
    col: int
    room: tuple[float, float, float, float]
    bars: list[_Colorbar] = field(default_factory=list)
    box: Bbox = field(default_factory=Bbox.null)  # where the axes was when measured

    def right(self, width: float, height: float) -> float:
        return self.room[1] + sum(b.extra(width, height) for b in self.bars)

    def pin_labels(self) -> None:
        """Move the axis labels with the axes, and keep them there when drawn.

        Measuring placed them beside the tick labels; with the same ticks, those move with
        the axes edge, so the labels do too, without the draw measuring every tick label
        again to place them.
        """
        ax, old, new = self.ax, self.box, self.ax.bbox
        if ax.name == "3d":
            return
        shift = {
            "left": new.x0 - old.x0,
            "right": new.x1 - old.x1,
            "bottom": new.y0 - old.y0,
            "top": new.y1 - old.y1,
        }
        to_axes = ax.transAxes.inverted()
        for axis, across in ((ax.xaxis, 1), (ax.yaxis, 0)):
            label = axis.label
            along = label.get_position()[1 - across]  # in axes coordinates already
            where = label.get_transform().transform(label.get_position())
            where[across] += shift[axis.get_label_position()]
            coords = [0.0, 0.0]
            coords[across] = float(to_axes.transform(where)[across])
            coords[1 - across] = along
            axis.set_label_coords(coords[0], coords[1])


def _cells(fig: Figure, renderer: Any) -> list[_Cell]:
    cells = []
    for ax in fig.axes:
        spec = ax.get_subplotspec()
        if spec is None:  # a colorbar: placed with its parent
            continue
        bars = []
        for cax in getattr(ax, "_colorbars", []):  # what constrained layout reads, too
            info = cax._colorbar_info
            if info["location"] != "right" or cax.get_subplotspec() is not None:
                raise ValueError(
                    "fit_layout places colorbars made with location='right', use_gridspec=False"
                )
            bars.append(_Colorbar(cax, info, _decorations(cax, renderer)))
        room = _decorations(ax, renderer)
        cells.append(_Cell(ax, spec.colspan.start, room, bars, ax.bbox.frozen()))
    return cells


def _place(fig: Figure, cells: list[_Cell]) -> None:
    """Equal axes boxes in one row, each column as wide as its decorations need, PAD apart."""
    W, H = fig.bbox.width, fig.bbox.height
    pad = PAD * fig.dpi
    ncols = max(c.col for c in cells) + 1
    bottom = max(c.room[2] for c in cells) + pad
    height = H - bottom - max(c.room[3] for c in cells) - pad
    left = [max([c.room[0] for c in cells if c.col == i], default=0.0) + pad for i in range(ncols)]
    width = (W - sum(left)) / ncols
    for _ in range(4):  # the colorbars' room grows with the width: a few steps settle it
        right = [
            max([c.right(width, height) for c in cells if c.col == i], default=0.0) + pad
            for i in range(ncols)
        ]
        width = (W - sum(left) - sum(right)) / ncols
    x = 0.0
    for i in range(ncols):
        x += left[i]
        for c in (c for c in cells if c.col == i):
            c.ax.set_position((x / W, bottom / H, width / W, height / H))
            x_bar = x + width + c.room[1]
            for b in c.bars:
                w, h = b.size(width, height)
                x_bar += b.info["pad"] * width + b.room[0]
                b.cax.set_position((x_bar / W, (bottom + (height - h) / 2) / H, w / W, h / H))
                x_bar += w + b.room[1]
        x += width + right[i]


def _ticks(fig: Figure) -> list[Any]:
    return [(a.get_xticks().tolist(), a.get_yticks().tolist()) for a in fig.axes if a.name != "3d"]


def fit_layout(fig: Figure, *, passes: int = 3) -> None:
    """Place a figure's row of axes so that every decoration fits, ``PAD`` from the edges.

    As constrained layout does for one row of subplots: the axes boxes get equal widths and
    one height, each column as much room left and right as its decorations (and colorbars)
    need. The decorations are measured once at the current positions; again only if the
    new sizes changed the ticks. The figure must have a canvas and its final dpi.
    """
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    for _ in range(passes):
        before = _ticks(fig)
        cells = _cells(fig, renderer)
        _place(fig, cells)
        if _ticks(fig) == before:
            for c in cells:
                c.pin_labels()
            return


def render_figure(fig: Figure, *, svg: bool = False) -> tuple[bytes, bytes | None]:
    """PNG (and SVG, if asked) of a figure, laid out once and drawn once per format.

    Parameters
    ----------
    fig : Figure
        Without a layout engine; call inside :func:`report_style`.
    svg : bool, default False
        Also return the SVG.

    Returns
    -------
    png : bytes
        RGB (the figures are opaque: the alpha channel that ``savefig`` writes is all 255),
        which is smaller and quicker to compress.
    svg : bytes or None
    """
    canvas = FigureCanvasAgg(fig)
    fig.set_dpi(DPI)
    fit_layout(fig)
    canvas.draw()
    buf = io.BytesIO()
    rgb = np.asarray(canvas.buffer_rgba())[..., :3]
    Image.fromarray(rgb).save(buf, format="png", dpi=(DPI, DPI))
    png = buf.getvalue()
    svg_bytes = None
    if svg:
        buf = io.BytesIO()
        fig.savefig(buf, format="svg", dpi=DPI, metadata={"Date": None, "Creator": None})
        svg_bytes = buf.getvalue()
    return png, svg_bytes
