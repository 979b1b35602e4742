"""How the exam looks on the page: the 0-8 kPa stiffness colour map (one definition for the view
and the colour bar), the confident region as an outline, the layers of the slice view.

Why one place: the colour bar must say what the view shows, so both are made from STIFFNESS_MAP.
Only MRML calls here (slicer-core), no trame, so the display set-up is tested without a browser.
"""

from __future__ import annotations

import numpy as np
import slicer
import vtk

from MREFibrosisLib.exam_nodes import CONFIDENT, NO_CONFIDENCE_DATA

KPA_RANGE = (0.0, 8.0)  # the window readers and the seed paper use for liver elastograms
# (fraction of the range, RGB): blue (soft) through green and yellow to red (stiff), as scanner elastograms
STIFFNESS_MAP = (
    (0.0, (0.0, 0.0, 0.55)),
    (0.15, (0.0, 0.0, 1.0)),
    (0.35, (0.0, 1.0, 1.0)),
    (0.5, (0.0, 1.0, 0.0)),
    (0.65, (1.0, 1.0, 0.0)),
    (0.85, (1.0, 0.0, 0.0)),
    (1.0, (0.55, 0.0, 0.0)),
)
FOREGROUND_OPACITY = 0.65  # the magnitude image stays visible under the stiffness map
CONFIDENT_OUTLINE_RGBA = (1.0, 1.0, 1.0, 1.0)


def css_gradient() -> str:
    """The colour bar's CSS background, bottom (0 kPa) to top (8 kPa)."""
    stops = ", ".join(f"rgb({r * 255:.0f},{g * 255:.0f},{b * 255:.0f}) {f * 100:.0f}%" for f, (r, g, b) in STIFFNESS_MAP)
    return f"linear-gradient(to top, {stops})"


def colour_bar_ticks(step_kpa: float = 2.0) -> list[str]:
    """Tick labels top to bottom."""
    lo, hi = KPA_RANGE
    return [f"{v:g}" for v in np.arange(hi, lo - 1e-9, -step_kpa)]


def stiffness_colour_node(scene):
    """A procedural colour node with STIFFNESS_MAP over 0-255 (the display node's window maps kPa to it)."""
    node = slicer.vtkMRMLProceduralColorNode()
    node.SetName("MREFibrosis stiffness 0-8 kPa")
    ctf = vtk.vtkColorTransferFunction()
    for f, rgb in STIFFNESS_MAP:
        ctf.AddRGBPoint(f * 255.0, *rgb)
    node.SetAndObserveColorTransferFunction(ctf)
    scene.AddNode(node)
    return node


def confident_outline_colour_node(scene):
    """Validity labels: only the confident region (and exams without confidence data) is drawn."""
    node = slicer.vtkMRMLColorTableNode()
    node.SetName("MREFibrosis confident region")
    node.SetTypeToUser()
    node.SetNumberOfColors(NO_CONFIDENCE_DATA + 1)
    for label in range(NO_CONFIDENCE_DATA + 1):
        rgba = CONFIDENT_OUTLINE_RGBA if label in (CONFIDENT, NO_CONFIDENCE_DATA) else (0.0, 0.0, 0.0, 0.0)
        node.SetColor(label, f"label{label}", *rgba)
    scene.AddNode(node)
    return node


def style_exam(scene, stiffness_node, validity_node) -> None:
    """Stiffness in kPa on the 0-8 map with its invalid (zero) pixels transparent; validity labels
    coloured so that only the confident region's edge shows."""
    display = stiffness_node.GetDisplayNode()
    display.SetAndObserveColorNodeID(stiffness_colour_node(scene).GetID())
    display.AutoWindowLevelOff()
    lo, hi = KPA_RANGE
    display.SetWindowLevel(hi - lo, (hi + lo) / 2.0)
    display.SetThreshold(1e-3, 1e6)
    display.ApplyThresholdOn()  # invalid pixels (stored 0) are see-through over the magnitude image
    validity_node.GetDisplayNode().SetAndObserveColorNodeID(confident_outline_colour_node(scene).GetID())


def composite_node_of(scene, slice_node):
    """The slice composite node (layers) that belongs to a slice view node."""
    name = slice_node.GetLayoutName()
    for i in range(scene.GetNumberOfNodesByClass("vtkMRMLSliceCompositeNode")):
        node = scene.GetNthNodeByClass(i, "vtkMRMLSliceCompositeNode")
        if node.GetLayoutName() == name:
            return node
    return None


def set_layers(scene, slice_node, stiffness_node, validity_node, magnitude_node=None) -> None:
    """Magnitude underneath, the stiffness map over it, the confident region's outline on top; the
    slice plane turned to the acquisition's so one view slice is one MRE slice."""
    composite = composite_node_of(scene, slice_node)
    if magnitude_node is not None:
        composite.SetBackgroundVolumeID(magnitude_node.GetID())
        composite.SetForegroundVolumeID(stiffness_node.GetID())
        composite.SetForegroundOpacity(FOREGROUND_OPACITY)
    else:
        composite.SetBackgroundVolumeID(stiffness_node.GetID())
        composite.SetForegroundVolumeID(None)
    composite.SetLabelVolumeID(validity_node.GetID())
    composite.SetLabelOpacity(1.0)
    slice_node.SetUseLabelOutline(True)
    slice_node.RotateToVolumePlane(stiffness_node)


ROI_RGB = (1.0, 0.0, 1.0)  # magenta: a colour the stiffness map never shows, so the ROI stands out on it
ROI_OUTLINE_PX = 2


def style_roi(segmentation_node, segment_id: str) -> None:
    """The ROI drawn on this page only (the segment's own colour and terminology stay as stored): an
    outline, so the stiffness under it stays visible (and an opaque fill is what the offscreen slice
    view draws over a foreground layer)."""
    display = segmentation_node.GetDisplayNode()
    if display is None:
        segmentation_node.CreateDefaultDisplayNodes()
        display = segmentation_node.GetDisplayNode()
    display.SetSegmentOverrideColor(segment_id, *ROI_RGB)
    display.SetOpacity2DFill(0.0)
    display.SetOpacity2DOutline(1.0)
    display.SetSliceIntersectionThickness(ROI_OUTLINE_PX)
    display.SetVisibility(True)


def has_confidence_data(validity_node) -> bool:
    """Whether the exam came with a confidence series: without one the white outline is the scanner's
    processed region, not a confident region, and the legend must say so."""
    labels = slicer.util.arrayFromVolume(validity_node)
    return not bool(np.any(labels == NO_CONFIDENCE_DATA))


def legend_text(confidence: bool) -> str:
    region = "confident region (>= 95 % confidence)" if confidence else "processed region (this exam has no confidence map)"
    return f"white outline: {region}; magenta outline: ROI"


def background_window(node, window_pct: float, level_pct: float) -> None:
    """The background image's window and level as percentages of its 99th-percentile value (a
    scale every exam shares, whatever its stored units), so one slider position suits all exams."""
    values = slicer.util.arrayFromVolume(node)
    top = float(np.percentile(values, 99)) or 1.0
    display = node.GetDisplayNode()
    display.AutoWindowLevelOff()
    display.SetWindowLevel(max(top * window_pct / 100.0, 1e-6), top * level_pct / 100.0)


def view_aids(slice_node) -> None:
    """A scale bar and an orientation marker, as Slicer's slice views show them."""
    slice_node.SetRulerType(slicer.vtkMRMLAbstractViewNode.RulerTypeThin)
    slice_node.SetOrientationMarkerType(slicer.vtkMRMLAbstractViewNode.OrientationMarkerTypeAxes)
    slice_node.SetOrientationMarkerSize(slicer.vtkMRMLAbstractViewNode.OrientationMarkerSizeSmall)
