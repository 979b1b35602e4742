"""The review page's wiring: trame-slicer's slice view and Segment Editor effects, buttons bound to
the ReviewSession, the engine's table shown as it comes. Nothing here measures or decides.

Element ids (toolbar buttons, #result-mean, #result-status, #results-table, #view-geometry) are
kept stable: the end-to-end test and site automation drive the page by them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import numpy as np
import slicer
import vtk
from trame.ui.html import DivLayout
from trame.widgets import client, html
from trame_slicer.core import LayoutManager, SlicerApp
from trame_slicer.rca_view import register_rca_factories
from trame_slicer.segmentation import (
    BrushDiameterMode,
    ScissorsEffectRangeMode,
    SegmentationEffectDraw,
    SegmentationEffectErase,
    SegmentationEffectPaint,
    SegmentationEffectScissors,
)
from trame_slicer.views import Layout, LayoutDirection, ViewLayoutDefinition
from undo_stack import UndoStack

from mrefibrosis.errors import MREFibrosisError, printable
from MREFibrosisLib.exam_nodes import MAGNITUDE_REF, WAVES_REF, numpy_matrix

from .display import (
    FOREGROUND_OPACITY,
    background_window,
    colour_bar_ticks,
    composite_node_of,
    css_gradient,
    has_confidence_data,
    legend_text,
    set_layers,
    style_exam,
    style_roi,
    view_aids,
)
from .downloads import exported_files
from .session import ComputeView, ReviewSession
from .strokes import discard_open_strokes

log = logging.getLogger("mrefibrosis.review")

EFFECTS = {"paint": SegmentationEffectPaint, "erase": SegmentationEffectErase, "draw": SegmentationEffectDraw, "scissors": SegmentationEffectScissors}
TOOLS = (("Paint", "paint"), ("Erase", "erase"), ("Draw and fill", "draw"), ("Scissors", "scissors"), ("None", "none"))
BRUSH_MM = 10.0  # about a fifth of a typical liver ROI's width on a 1.5 mm grid
BRUSH_CHOICES_MM = (3, 5, 10, 15, 20, 30)
AUTO_COMPUTE_DELAY_S = 0.3  # Compute takes about 0.15 s: numbers follow every edit, strokes in a burst cost one
VIEW_PX = 560
BUTTON = "margin:2px;padding:5px 10px;font-size:14px;"


# Keyboard shortcuts readers know from Slicer and OHIF; they call the page's triggers.
KEYS_JS = """
document.addEventListener('keydown', (e) => {
  if (e.target && ['INPUT', 'SELECT', 'TEXTAREA'].includes(e.target.tagName)) return;
  const ctrl = e.ctrlKey || e.metaKey, key = e.key.toLowerCase();
  let name = null;
  if (ctrl && key === 'z' && !e.shiftKey) name = 'review_undo';
  else if (ctrl && (key === 'y' || (key === 'z' && e.shiftKey))) name = 'review_redo';
  else if (!ctrl && (e.key === 'PageUp' || e.key === 'ArrowUp')) name = 'review_next';
  else if (!ctrl && (e.key === 'PageDown' || e.key === 'ArrowDown')) name = 'review_prev';
  if (name && window.trame) { e.preventDefault(); window.trame.trigger(name); }
});
"""


class ReviewPage:
    """One exam, one slice view, the editing tools, Compute and Export."""

    def __init__(self, server, app: SlicerApp, session: ReviewSession, out_dir: Path, title: str, reader: str | None = None):
        self.server, self.app, self.session, self.out_dir = server, app, session, out_dir
        self.reader = reader  # named in the SR as the person who edited the ROI
        self.state = server.state
        register_rca_factories(app.view_manager, server, slice_view_ui_f=lambda *_: None, three_d_view_ui_f=lambda *_: None)
        self.layouts = LayoutManager(app.scene, app.view_manager, server)
        self.layouts.register_layout("review", Layout(LayoutDirection.Vertical, [ViewLayoutDefinition.axial_view()]))
        self.layouts.set_layout("review")  # the view exists before anything is shown in it
        self.view = app.view_manager.get_view("Red")
        nodes = session.nodes
        style_exam(app.scene, nodes.stiffness, nodes.validity)
        set_layers(app.scene, self.view.get_view_node(), nodes.stiffness, nodes.validity, nodes.magnitude)
        view_aids(self.view.get_view_node())
        self.composite = composite_node_of(app.scene, self.view.get_view_node())
        self.backgrounds = {name: nodes.stiffness.GetNodeReference(ref) for name, ref in (("magnitude", MAGNITUDE_REF), ("waves", WAVES_REF))}
        self.backgrounds = {name: node for name, node in self.backgrounds.items() if node is not None}
        self.confidence = has_confidence_data(nodes.validity)
        self.kpa = slicer.util.arrayFromVolume(nodes.stiffness)  # (k, j, i) in kPa, for the value under the cursor
        self.view.fit_view_to_content()
        self._show_slice(self._slice_count() // 2)

        editor = self.editor = app.segmentation_editor
        editor.set_active_segmentation(session.segmentation, nodes.stiffness)
        editor.set_active_segment_id(session.roi_segment_id)
        self.undo_stack = UndoStack(undo_limit=50)
        editor.set_undo_stack(self.undo_stack)
        self.undo_stack.clear()
        self.undo_stack.index_changed.connect(lambda *_: self._after_undo_redo())
        self.effects = [editor.get_effect(effect) for effect in EFFECTS.values()]
        for effect in (SegmentationEffectPaint, SegmentationEffectErase):
            editor.get_effect(effect).set_brush_diameter(BRUSH_MM, BrushDiameterMode.Absolute)
        for effect in (SegmentationEffectScissors,):
            scissors = editor.get_effect(effect)
            scissors.set_range_mode(ScissorsEffectRangeMode.SYMMETRIC)  # the shown slice only: MRE slices are centimetres apart
            scissors.set_symmetric_distance(0.0)
        self._restyle_roi()
        editor.segmentation_modified.connect(self._on_edit)
        self.view.get_view_node().AddObserver("ModifiedEvent", lambda *_: self._push_geometry())
        self.view.interactor().AddObserver("MouseMoveEvent", self._on_mouse_move, -1.0)
        self._pending_compute = None
        self._computing = False

        self.state.update(
            {
                "trame__title": title,
                "page_title": title,
                "roi_origin": f"ROI: {session.origin.detail}",
                "legend_text": legend_text(self.confidence),
                "effect": "none",
                "can_undo": False,
                "can_redo": False,
                "edits": 0,
                "answers": 0,
                "dropped_strokes": 0,
                "slice_text": "",
                "cursor_text": "",
                "rows": [],
                "mean_text": "",
                "status_text": "",
                "warnings": [],
                "numbers_stale": False,
                "export_text": "",
                "export_files": exported_files(out_dir),
                "error_text": "",
                "dicom": False,
                "view_geometry": "{}",
                "brush_mm": BRUSH_MM,
                "map_opacity": round(FOREGROUND_OPACITY * 100),
                "background": "magnitude" if "magnitude" in self.backgrounds else "",
                "background_choices": list(self.backgrounds),
                "bg_window": 100,
                "bg_level": 50,
            }
        )
        self.state.change("brush_mm")(self._on_brush)
        self.state.change("map_opacity")(self._on_opacity)
        self.state.change("background", "bg_window", "bg_level")(self._on_background)
        for name, action in (
            ("review_undo", self.undo),
            ("review_redo", self.redo),
            ("review_next", lambda: self.move_slice(1)),
            ("review_prev", lambda: self.move_slice(-1)),
        ):
            server.trigger(name)(action)
        self._on_background()
        self._push_geometry()
        self.compute(press=False)  # numbers on load: the ROI as it opens, measured
        self._build()

    # ------------------------------------------------------------------ connections
    def on_connection_closed(self, _client_id: str = "") -> None:
        """A browser's connection ended (network drop, reload, closed tab): a stroke it left open is
        discarded, never applied by whatever press comes next (access.py, strokes.py)."""
        dropped = discard_open_strokes(self.effects)
        if dropped:
            log.info("discarded %d open stroke(s) of a closed connection", dropped)
            with self.state:
                self.state.dropped_strokes += dropped

    # ------------------------------------------------------------------ slices
    def _slice_count(self) -> int:
        return int(self.session.nodes.stiffness.GetImageData().GetDimensions()[2])

    def _ijk_to_ras(self) -> np.ndarray:
        m = vtk.vtkMatrix4x4()
        self.session.nodes.stiffness.GetIJKToRASMatrix(m)
        return numpy_matrix(m)

    def _xy_to_ijk(self, x: float, y: float) -> np.ndarray:
        xy_to_ras = numpy_matrix(self.view.get_view_node().GetXYToRAS())
        return np.linalg.inv(self._ijk_to_ras()) @ (xy_to_ras @ np.array([x, y, 0.0, 1.0]))

    def current_slice(self) -> int:
        """The MRE slice under the view: the view's centre mapped to the exam's voxel grid."""
        w, h = self.view.render_window().GetSize()
        return int(np.clip(round(float(self._xy_to_ijk(w / 2.0, h / 2.0)[2])), 0, self._slice_count() - 1))

    def _show_slice(self, k: int) -> None:
        dims = self.session.nodes.stiffness.GetImageData().GetDimensions()
        centre = self._ijk_to_ras() @ np.array([(dims[0] - 1) / 2.0, (dims[1] - 1) / 2.0, float(k), 1.0])
        self.view.get_view_node().JumpSliceByOffsetting(*centre[:3])

    def move_slice(self, step: int) -> None:
        self._show_slice(int(np.clip(self.current_slice() + step, 0, self._slice_count() - 1)))
        self._push_geometry()

    def reset_view(self) -> None:
        self.view.fit_view_to_content()
        self._show_slice(self._slice_count() // 2)
        self._push_geometry()

    def _on_mouse_move(self, interactor, _event) -> None:
        """The stiffness under the cursor, as Slicer's Data Probe shows it."""
        x, y = interactor.GetEventPosition()
        i, j, k = (int(round(float(v))) for v in self._xy_to_ijk(x, y)[:3])
        nk, nj, ni = self.kpa.shape
        if 0 <= i < ni and 0 <= j < nj and 0 <= k < nk:
            value = float(self.kpa[k, j, i])
            text = f"{value:.2f} kPa at ({i}, {j}), slice {k + 1}" if value > 0 else f"no stiffness value at ({i}, {j}), slice {k + 1}"
        else:
            text = ""
        if text != self.state.cursor_text:
            with self.state:
                self.state.cursor_text = text

    # ------------------------------------------------------------------ display settings
    def _on_brush(self, brush_mm, **_) -> None:
        size = float(brush_mm)
        if not 1.0 <= size <= 100.0:
            return
        for effect in (SegmentationEffectPaint, SegmentationEffectErase):
            self.editor.get_effect(effect).set_brush_diameter(size, BrushDiameterMode.Absolute)

    def _on_opacity(self, map_opacity, **_) -> None:
        self.composite.SetForegroundOpacity(float(np.clip(float(map_opacity) / 100.0, 0.0, 1.0)))
        self.view.schedule_render()

    def _on_background(self, **_) -> None:
        node = self.backgrounds.get(self.state.background)
        if node is None or self.composite.GetForegroundVolumeID() is None:
            return  # no magnitude or wave image: the stiffness map is the background itself
        self.composite.SetBackgroundVolumeID(node.GetID())
        background_window(node, float(self.state.bg_window), float(self.state.bg_level))
        self.view.schedule_render()

    # ------------------------------------------------------------------ editing
    def set_effect(self, name: str) -> None:
        discard_open_strokes(self.effects)  # a stroke still open now was cut off: never applied later
        if name in EFFECTS:
            self.editor.set_active_effect_type(EFFECTS[name])
        else:
            self.editor.deactivate_effect()
            name = "none"
        self.state.effect = name

    def undo(self) -> None:
        discard_open_strokes(self.effects)
        if self.undo_stack.can_undo():
            self.undo_stack.undo()

    def redo(self) -> None:
        discard_open_strokes(self.effects)
        if self.undo_stack.can_redo():
            self.undo_stack.redo()

    def _restyle_roi(self) -> None:
        """The ROI's page colour, from display.style_roi only: Undo and Redo restore the segment from
        a saved copy, which drops the display's per-segment override, so it is set again after them."""
        style_roi(self.session.segmentation, self.session.roi_segment_id)

    def _after_undo_redo(self) -> None:
        self._restyle_roi()
        with self.state:
            self.state.can_undo = self.undo_stack.can_undo()
            self.state.can_redo = self.undo_stack.can_redo()

    def _on_edit(self, *_) -> None:
        if self._computing:
            return  # Compute reads the segmentation; that is no edit
        self._restyle_roi()
        with self.state:
            self.state.edits += 1
            self.state.numbers_stale = True  # shown as out of date until the recompute lands
        self._schedule_compute()

    def _schedule_compute(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no server loop (a test calling the page directly): measure now
            self.compute(press=False)
            return
        if self._pending_compute is not None:
            self._pending_compute.cancel()
        self._pending_compute = loop.call_later(AUTO_COMPUTE_DELAY_S, self._auto_compute)

    def _auto_compute(self) -> None:
        self._pending_compute = None
        with self.state:
            self.compute(press=False)

    def _push_geometry(self) -> None:
        """The view's XY-to-RAS and the exam's IJK-to-RAS: what automation needs to point at a voxel."""
        node = self.view.get_view_node()
        geometry = {
            "xy_to_ras": numpy_matrix(node.GetXYToRAS()).ravel().tolist(),
            "ijk_to_ras": self._ijk_to_ras().ravel().tolist(),
            "slice": self.current_slice(),
        }
        with self.state:
            self.state.view_geometry = json.dumps(geometry)
            k = geometry["slice"]
            self.state.slice_text = f"slice {k + 1} of {self._slice_count()}, at {node.GetSliceOffset():.1f} mm"

    # ------------------------------------------------------------------ compute / export
    def _show(self, view: ComputeView) -> None:
        self.state.rows = view.display_rows()
        self.state.mean_text = f"{view.mean_kpa:.2f} kPa" if view.mean_kpa is not None else "-"
        self.state.status_text = view.verdict
        self.state.warnings = view.warnings_in_words
        self.state.numbers_stale = False

    def _answer(self, action, press: bool = True) -> bool:
        """Run an action; whatever happens, the page shows one line. A button's press is counted as
        answered (`answers`, what automation waits on); the automatic recompute after an edit is not,
        so a press is never taken as answered by a recompute that happened to land meanwhile."""
        self.state.error_text = ""
        try:
            action()
            return True
        except (MREFibrosisError, ValueError, OSError) as exc:
            self.state.error_text = printable(exc)
        except Exception as exc:  # a bug: one line on the page and in the log, never a trace in the browser
            self.state.error_text = f"internal error ({type(exc).__name__}); nothing was written by this press. Report it with the server's log."
            log.error("internal error in %s: %s: %s", getattr(action, "__name__", "action"), type(exc).__name__, printable(exc)[:200])
        finally:
            if press:
                self.state.answers += 1  # every press is answered, even with the same numbers
        return False

    def _measured(self, action):
        def run():
            self._computing = True
            try:
                return action()
            finally:
                self._computing = False

        return run

    def compute(self, press: bool = True) -> None:
        self._answer(self._measured(lambda: self._show(self.session.compute())), press)

    def export(self) -> None:
        def export_now():
            view, outcome = self.session.export(self.out_dir, dicom=bool(self.state.dicom), reader=self.reader)
            self._show(view)
            names = ", ".join(p.name for p in outcome.written)
            self.state.export_text = f"written to {self.out_dir}: {names}" + (f" ({outcome.note})" if outcome.note else "")
            self.state.export_files = exported_files(self.out_dir)
            log.info("exported %d files to %s", len(outcome.written), self.out_dir)

        self._answer(self._measured(export_now))

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        small = "font-size:13px;color:#555;"
        with DivLayout(self.server) as layout:
            layout.root.style = "font-family:sans-serif;margin:8px;"
            client.Script(KEYS_JS)
            html.H3("{{ page_title }}", id="page-title", style="margin:4px 0;")
            with html.Div(id="toolbar"):
                for label, name in TOOLS:
                    html.Button(
                        label,
                        id=f"btn-{name}",
                        style=(f"'{BUTTON}' + (effect === '{name}' ? 'background:#8cf;' : '')",),
                        click=(self.set_effect, f"['{name}']"),
                    )
                html.Button("Undo", id="btn-undo", title="Ctrl+Z", style=BUTTON, click=self.undo, disabled=("!can_undo",))
                html.Button("Redo", id="btn-redo", title="Ctrl+Y", style=BUTTON, click=self.redo, disabled=("!can_redo",))
                html.Button("Previous slice", id="btn-prev", title="Page Down", style=BUTTON, click=(self.move_slice, "[-1]"))
                html.Button("Next slice", id="btn-next", title="Page Up", style=BUTTON, click=(self.move_slice, "[1]"))
                html.Button("Reset view", id="btn-reset", style=BUTTON, click=self.reset_view)
                html.Span("{{ slice_text }}", id="slice-text", style="margin-left:8px;")
            with html.Div(id="view-settings", style=small + "margin:4px 0;display:flex;gap:14px;align-items:center;flex-wrap:wrap;"):
                with html.Label():
                    html.Span("brush ")
                    with html.Select(id="sel-brush", v_model_number=("brush_mm",)):
                        for mm in BRUSH_CHOICES_MM:
                            html.Option(f"{mm} mm", value=mm)
                with html.Label():
                    html.Span("map opacity ")
                    html.Input(type="range", id="rng-opacity", min=0, max=100, step=5, v_model_number=("map_opacity",))
                with html.Label(v_show="background_choices.length"):
                    html.Span("under the map ")
                    with html.Select(id="sel-background", v_model=("background",)):
                        html.Option("{{ b }}", v_for="b in background_choices", key="b", value=("b",))
                with html.Label(v_show="background_choices.length"):
                    html.Span("window ")
                    html.Input(type="range", id="rng-window", min=5, max=200, step=5, v_model_number=("bg_window",))
                with html.Label(v_show="background_choices.length"):
                    html.Span("level ")
                    html.Input(type="range", id="rng-level", min=0, max=100, step=5, v_model_number=("bg_level",))
            with html.Div(style="display:flex;gap:12px;align-items:flex-start;margin-top:6px;"):
                with html.Div(style="flex:none;"):
                    with html.Div(id="view-container", style=f"width:{VIEW_PX}px;height:{VIEW_PX}px;position:relative;"):
                        self.layouts.initialize_layout_grid(layout)
                    html.Div("{{ cursor_text || ' ' }}", id="cursor-value", style=small + "height:18px;")
                with html.Div(id="colour-bar", style="flex:none;display:flex;align-items:stretch;height:300px;"):
                    html.Div(style=f"width:18px;border:1px solid #444;background:{css_gradient()};")
                    with html.Div(style="display:flex;flex-direction:column;justify-content:space-between;margin-left:4px;font-size:12px;"):
                        for tick in colour_bar_ticks():
                            html.Span(tick)
                    html.Span("kPa", style="writing-mode:vertical-rl;margin-left:2px;font-size:12px;")
                with html.Div(style="min-width:360px;"):
                    html.Div("{{ roi_origin }}", id="roi-origin", style=small)
                    html.Div("{{ legend_text }}", id="legend", style=small)
                    html.Button("Compute", id="btn-compute", style=BUTTON, click=self.compute)
                    html.Button("Export", id="btn-export", style=BUTTON, click=self.export)
                    with html.Label(style="font-size:13px;"):
                        html.Input(type="checkbox", id="chk-dicom", v_model=("dicom",))
                        html.Span(" with DICOM SEG + SR")
                    html.Div(
                        "the ROI changed: these numbers are being measured again",
                        id="numbers-stale",
                        v_show="numbers_stale",
                        style="margin-top:6px;color:#fff;background:#a60;padding:2px 6px;font-size:13px;",
                    )
                    with html.Div(id="numbers", style=("numbers_stale ? 'opacity:0.35;' : ''",)):
                        with html.Div(style="margin-top:8px;"):
                            html.Span("Mean: ")
                            html.B("{{ mean_text }}", id="result-mean")
                        with html.Div():
                            html.Span("Status: ")
                            html.Span("{{ status_text }}", id="result-status")
                        with html.Ul(id="result-warnings", style="color:#a60;font-size:13px;margin:4px 0;padding-left:18px;"):
                            html.Li("{{ w }}", v_for="w in warnings", key="w")
                        with html.Table(id="results-table", style="border-collapse:collapse;font-size:13px;margin-top:6px;"):
                            with html.Tr():
                                for head in ("slice", "area cm2", "mean kPa", "median kPa", "stage", "status"):
                                    html.Th(head, style="border-bottom:1px solid #888;padding:2px 6px;")
                            with html.Tr(v_for="row in rows", key="row.slice"):
                                for key in ("slice", "roi_area_cm2", "mean_kpa", "median_kpa", "stage", "status"):
                                    html.Td(f"{{{{ row.{key} }}}}", style="padding:2px 6px;text-align:right;")
                    html.Div("{{ export_text }}", id="export-text", style="font-size:13px;margin-top:6px;word-break:break-all;")
                    with html.Div(id="downloads", v_show="export_files.length", style="font-size:13px;margin-top:4px;"):
                        html.Span("download: ")
                        html.A("{{ f }}", v_for="f in export_files", key="f", href=("'export/' + f",), download=True, style="margin-right:8px;")
                    html.Div("{{ error_text }}", id="error-text", style="color:#b00;font-size:13px;")
            html.Pre("{{ view_geometry }}", id="view-geometry", style="display:none;")
            html.Span("{{ edits }}", id="edit-count", style="display:none;")
            html.Span("{{ answers }}", id="answer-count", style="display:none;")
            html.Span("{{ dropped_strokes }}", id="dropped-strokes", style="display:none;")
        self.ui = layout
