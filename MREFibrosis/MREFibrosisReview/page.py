"""The review page's wiring: trame-slicer's slice view and Segment Editor effects, buttons bound to
the ReviewSession, the engine's table shown as it comes. Nothing here measures or decides.

Element ids (toolbar buttons, #result-mean, #result-status, #results-table, #view-geometry) are
kept stable: the end-to-end test and site automation drive the page by them.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import vtk
from trame.ui.html import DivLayout
from trame.widgets import html
from trame_slicer.core import LayoutManager, SlicerApp
from trame_slicer.rca_view import register_rca_factories
from trame_slicer.segmentation import BrushDiameterMode, ScissorsEffectRangeMode, SegmentationEffectErase, SegmentationEffectPaint, SegmentationEffectScissors
from trame_slicer.views import Layout, LayoutDirection, ViewLayoutDefinition
from undo_stack import UndoStack

from mrefibrosis.errors import MREFibrosisError, printable
from MREFibrosisLib.exam_nodes import numpy_matrix

from .display import colour_bar_ticks, css_gradient, set_layers, style_exam, style_roi
from .session import ReviewSession

log = logging.getLogger("mrefibrosis.review")

EFFECTS = {"paint": SegmentationEffectPaint, "erase": SegmentationEffectErase, "scissors": SegmentationEffectScissors}
BRUSH_MM = 10.0  # about a fifth of a typical liver ROI's width on a 1.5 mm grid
VIEW_PX = 560
BUTTON = "margin:2px;padding:5px 10px;font-size:14px;"


class ReviewPage:
    """One exam, one slice view, the editing tools, Compute and Export."""

    def __init__(self, server, app: SlicerApp, session: ReviewSession, out_dir: Path, title: str):
        self.server, self.app, self.session, self.out_dir = server, app, session, out_dir
        self.state = server.state
        register_rca_factories(app.view_manager, server, slice_view_ui_f=lambda *_: None, three_d_view_ui_f=lambda *_: None)
        self.layouts = LayoutManager(app.scene, app.view_manager, server)
        self.layouts.register_layout("review", Layout(LayoutDirection.Vertical, [ViewLayoutDefinition.axial_view()]))
        self.layouts.set_layout("review")  # the view exists before anything is shown in it
        self.view = app.view_manager.get_view("Red")
        nodes = session.nodes
        style_exam(app.scene, nodes.stiffness, nodes.validity)
        set_layers(app.scene, self.view.get_view_node(), nodes.stiffness, nodes.validity, nodes.magnitude)
        self.view.fit_view_to_content()
        self._show_slice(self._slice_count() // 2)

        editor = self.editor = app.segmentation_editor
        editor.set_active_segmentation(session.segmentation, nodes.stiffness)
        editor.set_active_segment_id(session.roi_segment_id)
        style_roi(session.segmentation, session.roi_segment_id)
        self.undo_stack = UndoStack(undo_limit=50)
        editor.set_undo_stack(self.undo_stack)
        self.undo_stack.clear()
        self.undo_stack.index_changed.connect(lambda *_: self._sync_undo())
        for effect in (SegmentationEffectPaint, SegmentationEffectErase):
            editor.get_effect(effect).set_brush_diameter(BRUSH_MM, BrushDiameterMode.Absolute)
        scissors = editor.get_effect(SegmentationEffectScissors)
        scissors.set_range_mode(ScissorsEffectRangeMode.SYMMETRIC)  # the shown slice only: MRE slices are centimetres apart
        scissors.set_symmetric_distance(0.0)
        editor.segmentation_modified.connect(self._on_edit)
        self.view.get_view_node().AddObserver("ModifiedEvent", lambda *_: self._push_geometry())

        self.state.update(
            {
                "trame__title": title,
                "page_title": title,
                "roi_origin": f"ROI: {session.origin.detail}",
                "effect": "none",
                "can_undo": False,
                "can_redo": False,
                "edits": 0,
                "answers": 0,
                "slice_text": "",
                "rows": [],
                "mean_text": "",
                "status_text": "",
                "warnings_text": "",
                "export_text": "",
                "error_text": "",
                "dicom": False,
                "view_geometry": "{}",
            }
        )
        self._push_geometry()
        self._build()

    # ------------------------------------------------------------------ slices
    def _slice_count(self) -> int:
        return int(self.session.nodes.stiffness.GetImageData().GetDimensions()[2])

    def _ijk_to_ras(self) -> np.ndarray:
        m = vtk.vtkMatrix4x4()
        self.session.nodes.stiffness.GetIJKToRASMatrix(m)
        return numpy_matrix(m)

    def current_slice(self) -> int:
        """The MRE slice under the view: the view's centre mapped to the exam's voxel grid."""
        xy_to_ras = numpy_matrix(self.view.get_view_node().GetXYToRAS())
        w, h = self.view.render_window().GetSize()
        ijk = np.linalg.inv(self._ijk_to_ras()) @ (xy_to_ras @ np.array([w / 2.0, h / 2.0, 0.0, 1.0]))
        return int(np.clip(round(float(ijk[2])), 0, self._slice_count() - 1))

    def _show_slice(self, k: int) -> None:
        dims = self.session.nodes.stiffness.GetImageData().GetDimensions()
        centre = self._ijk_to_ras() @ np.array([(dims[0] - 1) / 2.0, (dims[1] - 1) / 2.0, float(k), 1.0])
        self.view.get_view_node().JumpSliceByOffsetting(*centre[:3])

    def move_slice(self, step: int) -> None:
        self._show_slice(int(np.clip(self.current_slice() + step, 0, self._slice_count() - 1)))
        self._push_geometry()

    # ------------------------------------------------------------------ editing
    def set_effect(self, name: str) -> None:
        if name in EFFECTS:
            self.editor.set_active_effect_type(EFFECTS[name])
        else:
            self.editor.deactivate_effect()
            name = "none"
        self.state.effect = name

    def undo(self) -> None:
        if self.undo_stack.can_undo():
            self.undo_stack.undo()

    def redo(self) -> None:
        if self.undo_stack.can_redo():
            self.undo_stack.redo()

    def _on_edit(self, *_) -> None:
        with self.state:
            self.state.edits += 1

    def _sync_undo(self) -> None:
        with self.state:
            self.state.can_undo = self.undo_stack.can_undo()
            self.state.can_redo = self.undo_stack.can_redo()

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
            self.state.slice_text = f"slice {geometry['slice']} (0-{self._slice_count() - 1})"

    # ------------------------------------------------------------------ compute / export
    def _show(self, view) -> None:
        self.state.rows = view.rows
        self.state.mean_text = f"{view.mean_kpa:.2f} kPa" if view.mean_kpa is not None else "-"
        self.state.status_text = view.status_text
        self.state.warnings_text = ", ".join(view.warnings)

    def _answer(self, action) -> None:
        """Run a button's action; whatever happens, the page shows one line and counts the answer."""
        self.state.error_text = ""
        try:
            action()
        except (MREFibrosisError, ValueError, OSError) as exc:
            self.state.error_text = printable(exc)
        except Exception as exc:  # a bug: one line on the page and in the log, never a trace in the browser
            self.state.error_text = f"internal error ({type(exc).__name__}); nothing was written by this press. Report it with the server's log."
            log.error("internal error in %s: %s: %s", getattr(action, "__name__", "action"), type(exc).__name__, printable(exc)[:200])
        finally:
            self.state.answers += 1  # every press is answered, even with the same numbers

    def compute(self) -> None:
        self._answer(lambda: self._show(self.session.compute()))

    def export(self) -> None:
        def export_now():
            view, outcome = self.session.export(self.out_dir, dicom=bool(self.state.dicom))
            self._show(view)
            names = ", ".join(p.name for p in outcome.written)
            self.state.export_text = f"written to {self.out_dir}: {names}" + (f" ({outcome.note})" if outcome.note else "")
            log.info("exported %d files to %s", len(outcome.written), self.out_dir)

        self._answer(export_now)

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        with DivLayout(self.server) as layout:
            layout.root.style = "font-family:sans-serif;margin:8px;"
            html.H3("{{ page_title }}", id="page-title", style="margin:4px 0;")
            with html.Div(id="toolbar"):
                for label, name in (("Paint", "paint"), ("Erase", "erase"), ("Scissors", "scissors"), ("None", "none")):
                    html.Button(
                        label,
                        id=f"btn-{name}",
                        style=(f"'{BUTTON}' + (effect === '{name}' ? 'background:#8cf;' : '')",),
                        click=(self.set_effect, f"['{name}']"),
                    )
                html.Button("Undo", id="btn-undo", style=BUTTON, click=self.undo, disabled=("!can_undo",))
                html.Button("Redo", id="btn-redo", style=BUTTON, click=self.redo, disabled=("!can_redo",))
                html.Button("Previous slice", id="btn-prev", style=BUTTON, click=(self.move_slice, "[-1]"))
                html.Button("Next slice", id="btn-next", style=BUTTON, click=(self.move_slice, "[1]"))
                html.Span("{{ slice_text }}", id="slice-text", style="margin-left:8px;")
            with html.Div(style="display:flex;gap:12px;align-items:flex-start;margin-top:6px;"):
                with html.Div(id="view-container", style=f"flex:none;width:{VIEW_PX}px;height:{VIEW_PX}px;position:relative;"):
                    self.layouts.initialize_layout_grid(layout)
                with html.Div(id="colour-bar", style="flex:none;display:flex;align-items:stretch;height:300px;"):
                    html.Div(style=f"width:18px;border:1px solid #444;background:{css_gradient()};")
                    with html.Div(style="display:flex;flex-direction:column;justify-content:space-between;margin-left:4px;font-size:12px;"):
                        for tick in colour_bar_ticks():
                            html.Span(tick)
                    html.Span("kPa", style="writing-mode:vertical-rl;margin-left:2px;font-size:12px;")
                with html.Div(style="min-width:360px;"):
                    html.Div("{{ roi_origin }}", id="roi-origin", style="font-size:13px;color:#555;")
                    html.Div("white outline: confident region; magenta: ROI", style="font-size:13px;color:#555;")
                    html.Button("Compute", id="btn-compute", style=BUTTON, click=self.compute)
                    html.Button("Export", id="btn-export", style=BUTTON, click=self.export)
                    with html.Label(style="font-size:13px;"):
                        html.Input(type="checkbox", id="chk-dicom", v_model=("dicom",))
                        html.Span(" with DICOM SEG + SR")
                    with html.Div(style="margin-top:8px;"):
                        html.Span("Mean: ")
                        html.B("{{ mean_text }}", id="result-mean")
                    with html.Div():
                        html.Span("Status: ")
                        html.Span("{{ status_text }}", id="result-status")
                    html.Div("{{ warnings_text }}", id="result-warnings", style="color:#a60;font-size:13px;")
                    with html.Table(id="results-table", style="border-collapse:collapse;font-size:13px;margin-top:6px;"):
                        with html.Tr():
                            for head in ("slice", "area cm2", "mean kPa", "median kPa", "stage", "status"):
                                html.Th(head, style="border-bottom:1px solid #888;padding:2px 6px;")
                        with html.Tr(v_for="row in rows", key="row.slice"):
                            for key in ("slice", "roi_area_cm2", "mean_kpa", "median_kpa", "stage", "status"):
                                html.Td(f"{{{{ row.{key} }}}}", style="padding:2px 6px;text-align:right;")
                    html.Div("{{ export_text }}", id="export-text", style="font-size:13px;margin-top:6px;word-break:break-all;")
                    html.Div("{{ error_text }}", id="error-text", style="color:#b00;font-size:13px;")
            html.Pre("{{ view_geometry }}", id="view-geometry", style="display:none;")
            html.Span("{{ edits }}", id="edit-count", style="display:none;")
            html.Span("{{ answers }}", id="answer-count", style="display:none;")
        self.ui = layout
