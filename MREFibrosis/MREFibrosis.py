"""MREFibrosis: liver stiffness (kPa) and fibrosis stage from an MR elastography exam.

Thin Qt panel; the work is done by MREFibrosisLib (Qt-free logic, tested with slicer-core) and the
`mrefibrosis` engine next to this file. Packages (scipy, pynrrd, psutil; onnxruntime for Segment on
the CPU) are installed on first use after the user agrees, never at import or startup; PyTorch is
optional (GPU, training).
"""

import logging
import os
import pathlib
import tempfile
import time
from typing import Annotated

import qt
import slicer
import vtk
from slicer import vtkMRMLLabelMapVolumeNode, vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode, vtkMRMLTableNode
from slicer.i18n import tr as _
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

PRESETS = ["seed", "radelement", "liang2023_nafld", "singh2015", "hsu2019_nafld"]
POLL_MS = 200


class MREFibrosis(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("MRE Fibrosis")
        self.parent.categories = [_("Quantification")]
        self.parent.dependencies = []
        self.parent.contributors = ["MREFibrosis developers"]
        self.parent.helpText = _(
            "Liver MR elastography: load an MRE exam, press Segment for an automatic liver ROI inside the "
            ">= 95 % confidence region, correct it in Segment Editor, then Compute the area-weighted mean "
            "stiffness (kPa) and fibrosis stage on the original values, and Export the measurement table. "
            "Not a medical device; the shipped model is trained on simulated exams."
        )
        self.parent.acknowledgementText = _("Based on the UNet-ResNeXt50 MRE segmentation approach of the seed paper (CC BY 4.0).")


@parameterNodeWrapper
class MREFibrosisParameterNode:
    stiffnessVolume: vtkMRMLScalarVolumeNode
    validityVolume: vtkMRMLLabelMapVolumeNode
    segmentation: vtkMRMLSegmentationNode
    measurementTable: vtkMRMLTableNode
    modelPath: pathlib.Path
    forceCpu: bool = False
    # the engine's RoiMargins defaults, written out because the engine is not importable before its
    # packages are installed (a wiring test holds them equal)
    roiEdgeMm: Annotated[float, WithinRange(0.0, 100.0)] = 10.0
    roiDriverMm: Annotated[float, WithinRange(0.0, 100.0)] = 25.0
    preset: Annotated[str, Choice(PRESETS)] = "seed"


def ensure_dependencies(segment: bool) -> bool:
    """Ask once, then install what is missing of the module's requirement files: minimums with
    platform markers, so Slicer's bundled packages stay as they are (Segment on the CPU needs only
    onnxruntime; PyTorch, for GPUs and training, comes from the PyTorch extension: docs/slicer.md).
    Slicer >= 5.12 installs through `slicer.packaging.pip_ensure`; older releases through pip_install."""
    from MREFibrosisLib.dependencies import applies_here, missing_for, read_requirements, requirement_files

    missing = missing_for(segment)
    if not missing:
        return True
    if not slicer.util.confirmOkCancelDisplay(
        _("MREFibrosis needs these Python packages: {0}. Install them now? This can take a few minutes.").format(", ".join(missing))
    ):
        return False
    lines = [line for f in requirement_files(segment) for line in read_requirements(f) if applies_here(line)]
    slicer_packaging = getattr(slicer, "packaging", None)
    with slicer.util.WaitCursor():
        if slicer_packaging is not None and hasattr(slicer_packaging, "pip_ensure"):  # Slicer >= 5.12
            from packaging.requirements import Requirement

            slicer_packaging.pip_ensure([Requirement(line) for line in lines], requester="MREFibrosis")
        else:
            slicer.util.pip_install(lines)
    return not missing_for(segment)


class MREFibrosisWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Wiring only: every action is one call into MREFibrosisLib (tested with slicer-core in pytest)."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._watch = None  # MREFibrosisLib.job_watch.JobWatch, made with the Lib (its packages may be missing at setup)
        self._timer = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/MREFibrosis.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.ui.presetComboBox.clear()
        self.ui.presetComboBox.addItems(PRESETS)
        self.ui.cancelButton.enabled = False
        self.ui.progressBar.visible = False
        self._timer = qt.QTimer()
        self._timer.setInterval(POLL_MS)
        self._timer.connect("timeout()", self._pollSegment)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.loadFolderButton.connect("clicked(bool)", self.onLoadFolder)
        self.ui.segmentButton.connect("clicked(bool)", self.onSegment)
        self.ui.cancelButton.connect("clicked(bool)", self.onCancel)
        self.ui.computeButton.connect("clicked(bool)", self.onCompute)
        self.ui.exportButton.connect("clicked(bool)", self.onExport)
        self.initializeParameterNode()

    def cleanup(self) -> None:
        self.onCancel()
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtons)

    def onSceneStartClose(self, caller, event) -> None:
        self.onCancel()
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        # the module's own logic class, so the node is registered under "MREFibrosis"
        self.setParameterNode(MREFibrosisParameterNode(MREFibrosisLogic().getParameterNode()))

    def setParameterNode(self, inputParameterNode) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtons)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtons)
            self._updateButtons()

    def _updateButtons(self, caller=None, event=None) -> None:
        p = self._parameterNode
        busy = bool(self._watch and self._watch.busy)
        volume = p.stiffnessVolume if p else None
        own_validity = volume.GetNodeReference("MREFibrosis.validity") if volume else None
        shown = p.validityVolume if p else None
        if p and (own_validity.GetID() if own_validity else None) != (shown.GetID() if shown else None):  # display only: Compute measures the exam's own map
            p.validityVolume = own_validity
            return  # the parameter node's Modified event calls this again
        self.ui.segmentButton.enabled = bool(volume) and not busy
        self.ui.computeButton.enabled = bool(volume and p.segmentation) and not busy
        self.ui.exportButton.enabled = bool(self.logic and volume and volume.GetID() in self.logic.results)
        self.ui.cancelButton.enabled = busy

    def _getLogic(self, segment: bool = False):
        if not ensure_dependencies(segment):
            raise RuntimeError(_("MREFibrosis cannot run without its Python packages."))
        if self.logic is None:
            from MREFibrosisLib import MREFibrosisLogic as Logic
            from MREFibrosisLib.job_watch import JobWatch

            self.logic = Logic()
            self._watch = JobWatch(self._timer.start, self._timer.stop)
        if segment:
            self.ui.deviceLabel.text = self._deviceText()
        return self.logic

    def _deviceText(self) -> str:
        from MREFibrosisLib.dependencies import compute_device_text

        return compute_device_text(self._parameterNode.forceCpu)

    def _engineVolume(self, logic):
        """The selected stiffness volume if the engine loaded it; a DICOM-browser volume is read by
        the engine once, and an ROI drawn on it goes with it."""
        p = self._parameterNode
        selection = logic.engine_selection(slicer.mrmlScene, p.stiffnessVolume, getattr(slicer, "dicomDatabase", None), p.segmentation)
        if selection.nodes is not None:
            self._showExam(selection.nodes)
        p.stiffnessVolume = selection.stiffness
        p.validityVolume = logic.validity_node_for(selection.stiffness)
        p.segmentation = selection.segmentation
        if selection.note:
            slicer.util.infoDisplay(selection.note)
        return selection.stiffness

    def _showExam(self, nodes) -> None:
        self._parameterNode.stiffnessVolume = nodes.stiffness
        self._parameterNode.validityVolume = nodes.validity
        self._parameterNode.segmentation = nodes.stiffness.GetNodeReference("MREFibrosis.roi")
        slicer.util.setSliceViewerLayers(background=nodes.magnitude or nodes.stiffness, foreground=nodes.stiffness, foregroundOpacity=0.6, fit=True)

    def onLoadFolder(self) -> None:
        folder = qt.QFileDialog.getExistingDirectory(slicer.util.mainWindow(), _("Folder holding one MRE exam"))
        if not folder:
            return
        with slicer.util.tryWithErrorDisplay(_("Could not load the MRE exam."), waitCursor=True):
            self._showExam(self._getLogic().load_exam(slicer.mrmlScene, folder))

    def onSegment(self) -> None:
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay(_("Segmentation failed."), waitCursor=True):
            logic = self._getLogic(segment=True)
            if not self._ensureWeights(p.modelPath):
                return
            volume = self._engineVolume(logic)
            if logic.roi_edited(volume, p.segmentation) and not slicer.util.confirmOkCancelDisplay(
                _("Segment replaces this exam's ROI, which was edited or drawn by hand. Replace it?")
            ):
                return
            settings = logic.panel_settings(p.modelPath, p.forceCpu, p.roiEdgeMm, p.roiDriverMm)
            job = logic.start_segment(volume, settings)
            self.ui.progressBar.setRange(0, 100)
            self.ui.progressBar.value = 0
            self.ui.progressBar.visible = True
            self._watch.watch(job)
        self._updateButtons()

    def _ensureWeights(self, modelPath: str) -> bool:
        """The default model's weights, fetched once with the reader's consent (docs/adr/0007)."""
        from MREFibrosisLib.model_weights import consent_text, fetch_weights, weights_missing

        if not weights_missing(modelPath):
            return True
        if not slicer.util.confirmOkCancelDisplay(_(consent_text())):
            return False
        dialog = slicer.util.createProgressDialog(labelText=_("Downloading the model's weights..."), maximum=100)
        try:

            def progress(done, total):
                if total:
                    dialog.value = int(100 * done / total)
                slicer.app.processEvents()
                return not dialog.wasCanceled

            fetch_weights(progress)
        finally:
            dialog.close()
        return True

    def _pollSegment(self) -> None:
        if self._watch is None:
            self._timer.stop()
            return
        # the watch stops the timer before _segmentEnded can open a dialog (its nested event loop)
        self._watch.tick(self._showSegmentProgress, self._segmentEnded)

    def _showSegmentProgress(self, update) -> None:
        for line in update.lines:
            logging.info("MREFibrosis segment: %s", line)
        if update.progress is not None:
            self.ui.progressBar.value = int(round(100 * update.progress))

    def _segmentEnded(self, job, update) -> None:
        try:
            logging.info("MREFibrosis segmentation %s in %.1f s", update.state.value, job.runner.seconds or 0.0)
            with slicer.util.tryWithErrorDisplay(_("Segmentation failed."), waitCursor=True):
                p = self._parameterNode
                selected = p.stiffnessVolume if p else None
                target = p.segmentation if selected is not None and selected.GetID() == job.identity.node_id else None
                node = self.logic.finish_segment(slicer.mrmlScene, job, target)
                if selected is not None and selected.GetID() == job.identity.node_id:
                    p.segmentation = node
        finally:
            self._endJob()

    def _endJob(self) -> None:
        if self._watch is not None:
            self._watch.detach()
        elif self._timer is not None:
            self._timer.stop()
        self.ui.progressBar.visible = False
        self._updateButtons()

    def onCancel(self) -> None:
        job = self._watch.job if self._watch is not None else None
        if job is None:
            return
        try:
            gone = job.runner.cancel()
            logging.info("MREFibrosis segmentation cancelled%s", "" if gone else " (some processes did not end)")
            job.discard_files()
        finally:
            self._endJob()

    def onCompute(self) -> None:
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay(_("Measurement failed."), waitCursor=True):
            logic = self._getLogic()
            volume = self._engineVolume(logic)
            # the exam's own validity map is measured (the Lib keeps the engine's Exam), never the selector's
            result, table = logic.compute(slicer.mrmlScene, volume, p.segmentation, preset=p.preset, table_node=p.measurementTable)
            p.measurementTable = table
            self.ui.resultLabel.text = result.summary_line()
            slicer.app.layoutManager().setLayout(slicer.vtkMRMLLayoutNode.SlicerLayoutFourUpTableView)
            slicer.app.applicationLogic().GetSelectionNode().SetActiveTableID(table.GetID())
            slicer.app.applicationLogic().PropagateTableSelection()
        self._updateButtons()

    def onExport(self) -> None:
        folder = qt.QFileDialog.getExistingDirectory(slicer.util.mainWindow(), _("Folder for measurements.csv, result.json, roi.seg.nrrd"))
        if not folder:
            return
        with slicer.util.tryWithErrorDisplay(_("Export failed."), waitCursor=True):
            volume = self._parameterNode.stiffnessVolume
            outcome = self._getLogic().export(folder, volume, dicom=True)
            message = _("Wrote {0}").format(", ".join(os.path.basename(str(w)) for w in outcome.written))
            slicer.util.infoDisplay(message + ("\n" + outcome.note if outcome.note else ""))


class MREFibrosisLogic(ScriptedLoadableModuleLogic):
    """Slicer's module logic slot (it names the parameter node); the real logic is MREFibrosisLib.MREFibrosisLogic."""

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)


class MREFibrosisTest(ScriptedLoadableModuleTest):
    """The radiologist's flow on a simulated exam: load, Segment (off the GUI thread), erase part of
    the ROI, Compute, Export, and the exported mean checked against numpy on the edited mask.
    Installs nothing: without a runtime (onnxruntime or torch) the ground-truth ROI stands in."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_radiologist_flow()

    def test_radiologist_flow(self):
        import csv
        import json

        import numpy as np

        from MREFibrosisLib.dependencies import missing_for

        if missing_for(segment=False):
            self.skipTest(f"packages not installed: {', '.join(missing_for(segment=False))}")
        from mrefibrosis.synth.cohort import generate_cohort
        from MREFibrosisLib import MREFibrosisLogic as Logic
        from MREFibrosisLib.segment_nodes import find_roi_segment

        tmp = pathlib.Path(tempfile.mkdtemp(prefix="mrefibrosis-selftest-"))
        generate_cohort(tmp, 1, seed=5, vendor="ge", stage_mix=None, workers=1)
        exam = tmp / "exam_00000"
        logic = Logic()
        nodes = logic.load_exam(slicer.mrmlScene, exam / "dicom")
        if not missing_for(segment=True):
            from mrefibrosis.model.segmenter_settings import SegmenterSettings

            job = logic.start_segment(nodes.stiffness, SegmenterSettings(device="cpu"), work_dir=tmp / "segment")
            while not job.poll().finished:
                slicer.app.processEvents()
                time.sleep(0.1)
            seg = logic.finish_segment(slicer.mrmlScene, job)
        else:
            seg = logic.import_roi_file(slicer.mrmlScene, nodes.stiffness, exam / "roi.seg.nrrd")
        sid = find_roi_segment(seg)
        mask = slicer.util.arrayFromSegmentBinaryLabelmap(seg, sid, nodes.stiffness) > 0
        edited = mask.copy()
        edited[:, : edited.shape[1] // 2, :] = False  # what an Erase stroke over the upper half does
        if not edited.any():
            edited = mask
        slicer.util.updateSegmentBinaryLabelmapFromArray(edited.astype(np.uint8), seg, sid, nodes.stiffness)
        result, _table = logic.compute(slicer.mrmlScene, nodes.stiffness, seg)
        outcome = logic.export(tmp / "export", nodes.stiffness)
        self.assertIn("measurements.csv", {p.name for p in outcome.written})
        kpa = slicer.util.arrayFromVolume(nodes.stiffness)
        valid = slicer.util.arrayFromVolume(nodes.validity) > 0
        rows = list(csv.DictReader((tmp / "export" / "measurements.csv").open()))
        exported = json.loads((tmp / "export" / "result.json").read_text())
        if result.measurement.status != "indeterminate":
            expected = float(kpa[edited & valid].astype(np.float64).mean())
            self.assertAlmostEqual(float(rows[-1]["mean_kpa"]), expected, places=3)
            self.assertAlmostEqual(exported["mean_kpa"], expected, places=5)
        self.delayDisplay(f"MREFibrosis test passed: {result.summary_line()}")
