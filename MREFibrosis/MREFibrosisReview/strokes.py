"""Open strokes of the editing tools, discarded on demand.

Why: trame-slicer's Paint and Erase collect brush positions from press to release and apply them at
release; Scissors collects its outline the same way. When the release never arrives (the
connection dropped mid-stroke, or the tool was changed while a stroke was somehow still open) the
collected points stay, keep growing with mouse moves, and are applied by the next release: an ROI
change the reader never made. Discarding them keeps every applied edit a whole press-to-release
stroke of one connection.
"""

from __future__ import annotations

from trame_slicer.segmentation.segmentation_effect_scissors_widget import SegmentationScissorsWidget
from trame_slicer.segmentation.segmentation_paint_widget import SegmentationPaintWidget


def _widgets(effect):
    for weak in list(effect.pipelines):
        pipeline = weak()
        widget = getattr(pipeline, "widget", None) if pipeline is not None else None
        if widget is not None:
            yield pipeline, widget


def discard_open_strokes(effects) -> int:
    """Drop every stroke still open in these effects without applying it; return how many."""
    dropped = 0
    for effect in effects:
        for pipeline, widget in _widgets(effect):
            if isinstance(widget, SegmentationPaintWidget) and widget.is_painting():
                widget.clear()  # no points left, so stop_painting() applies nothing
                widget.stop_painting()
            elif isinstance(widget, SegmentationScissorsWidget) and widget.is_painting():
                widget.cancel_painting()
            else:
                continue
            dropped += 1
            pipeline.RequestRender()
    return dropped


def open_strokes(effects) -> int:
    """How many strokes are open (pressed, not yet released) in these effects."""
    return sum(1 for effect in effects for _, widget in _widgets(effect) if widget.is_painting())
