"""PNG plots, drawn without pyplot: figures are plain ``matplotlib.figure.Figure`` objects, so
importing or calling learnlaw never switches the user's matplotlib backend or touches
pyplot's figure registry (a notebook's inline plots stay as they were)."""

from __future__ import annotations

import io
from pathlib import Path

from learnlaw.files import atomic_write


def subplots(nrows: int = 1, ncols: int = 1, **kwargs):
    """``(figure, axes)`` like ``pyplot.subplots``, for a figure pyplot does not know about."""
    from matplotlib.figure import Figure

    figsize = kwargs.pop("figsize", None)
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def png_bytes(fig) -> bytes:
    buffer = io.BytesIO()
    # the Software tag marks the file as learnlaw's (files.written_by_learnlaw)
    fig.savefig(
        buffer, format="png", dpi=110, bbox_inches="tight", metadata={"Software": "learnlaw"}
    )
    return buffer.getvalue()


def save_figure(fig, path: str | Path) -> Path:
    """Save a figure atomically as PNG."""
    data = png_bytes(fig)
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))
