"""MREFibrosis: liver stiffness (kPa) and fibrosis stage from an MR elastography exam.

Thin Qt panel; the work is done by MREFibrosisLib (Qt-free logic, tested with slicer-core) and the
`mrefibrosis` engine next to this file. Heavy packages (torch, segmentation-models-pytorch) are
installed on first use after the user agrees, never at import or startup.
"""

import logging
import os
import pathlib
import sys
import tempfile
import time
from typing import Annotated

import qt
import slicer
import vtk
from slicer import vtkMRMLLabelMapVolumeNode, vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode, vtkMRMLTableNode
from slicer.i18n import tr as _
from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

PRESETS = ["seed", "radelement", "liang2023_nafld", "singh2015", "hsu2019_nafld"]
# pip names of what the engine needs beyond Slicer's own Python; torch comes from the PyTorch extension
PIP_REQUIREMENTS = {"scipy": "scipy", "nrrd": "pynrrd", "segmentation_models_pytorch": "segmentation-models-pytorch"}


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
    preset: Annotated[str, Choice(PRESETS)] = "seed"


def missing_packages() -> list:
    import importlib.util

    missing = [pip for mod, pip in PIP_REQUIREMENTS.items() if importlib.util.find_spec(mod) is None]
    if importlib.util.find_spec("torch") is None:
        missing.insert(0, "torch")
    return missing


def ensure_dependencies() -> bool:
    """Ask once, then install: torch through the PyTorch extension, the rest with pip."""
    missing = missing_packages()
    if not missing:
        return True
    if not slicer.util.confirmOkCancelDisplay(
        _("MREFibrosis needs these Python packages: {0}. Install them now? This can take several minutes.").format(", ".join(missing))
    ):
        return False
    with slicer.util.WaitCursor():
        if "torch" in missing:
            try:
                import PyTorchUtils
            except ImportError:
                slicer.util.errorDisplay(_("Install the PyTorch extension from the Extensions Manager first, then restart Slicer."))
                return False
            if PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=False) is None:
                return False
            missing.remove("torch")
        if missing:
            slicer.util.pip_install(" ".join(missing))
    return not missing_packages()


class MREFibrosisWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._process = None
        self._processOut = None
        self._processStart = 0.0

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
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(MREFibrosisParameterNode(ScriptedLoadableModuleLogic().getParameterNode()))

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
        busy = self._process is not None
        self.ui.segmentButton.enabled = bool(p and p.stiffnessVolume) and not busy
        self.ui.computeButton.enabled = bool(p and p.stiffnessVolume and p.segmentation) and not busy
        self.ui.exportButton.enabled = bool(self.logic and self.logic.last_result) and not busy

    def _getLogic(self):
        if self.logic is None:
            if not ensure_dependencies():
                raise RuntimeError(_("MREFibrosis cannot run without its Python packages."))
            from MREFibrosisLib import MREFibrosisLogic

            self.logic = MREFibrosisLogic()
            import torch

            gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
            self.ui.deviceLabel.text = _("GPU: {0}").format(gpu) if gpu else _("CPU (no CUDA GPU found)")
        return self.logic

    def _device(self) -> str:
        return "cpu" if self._parameterNode.forceCpu else "auto"

    def onLoadFolder(self) -> None:
        folder = qt.QFileDialog.getExistingDirectory(slicer.util.mainWindow(), _("Folder holding one MRE exam"))
        if not folder:
            return
        with slicer.util.tryWithErrorDisplay(_("Could not load the MRE exam."), waitCursor=True):
            nodes = self._getLogic().load_exam(slicer.mrmlScene, folder)
            self._parameterNode.stiffnessVolume = nodes.stiffness
            self._parameterNode.validityVolume = nodes.validity
            slicer.util.setSliceViewerLayers(background=nodes.magnitude or nodes.stiffness, foreground=nodes.stiffness, foregroundOpacity=0.6, fit=True)

    def onSegment(self) -> None:
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay(_("Segmentation failed."), waitCursor=True):
            logic = self._getLogic()
            model = str(p.modelPath) if p.modelPath and str(p.modelPath) not in ("", ".") else None
            if p.stiffnessVolume.GetAttribute("MREFibrosis.SourceFolder"):
                # A child process keeps the GUI responsive and can be cancelled.
                self._processOut = tempfile.mkdtemp(prefix="mrefibrosis-")
                args = logic.segment_command(p.stiffnessVolume, self._processOut, model, self._device())
                self._process = qt.QProcess()
                self._process.setProcessChannelMode(qt.QProcess.MergedChannels)
                self._process.connect("finished(int,QProcess::ExitStatus)", self._onSegmentFinished)
                self._processStart = time.time()
                self._process.start(sys.executable, args)
                self.ui.progressBar.visible = True
                self.ui.progressBar.setRange(0, 0)
                self.ui.cancelButton.enabled = True
                self._updateButtons()
            else:
                p.segmentation = logic.segment(slicer.mrmlScene, p.stiffnessVolume, p.validityVolume, p.segmentation, model, self._device())

    def _onSegmentFinished(self, exitCode, exitStatus) -> None:
        output = bytes(self._process.readAll()).decode("utf-8", "replace") if self._process else ""
        self._process = None
        self.ui.progressBar.visible = False
        self.ui.cancelButton.enabled = False
        logging.info("MREFibrosis segmentation finished in %.1f s", time.time() - self._processStart)
        roi_file = os.path.join(self._processOut or "", "roi.seg.nrrd")
        if exitCode != 0 or not os.path.exists(roi_file):
            lines = [ln for ln in output.splitlines() if ln.startswith("error")]
            slicer.util.errorDisplay(lines[-1] if lines else _("Segmentation failed; see the Python console."))
        else:
            with slicer.util.tryWithErrorDisplay(_("Could not load the segmentation."), waitCursor=True):
                p = self._parameterNode
                p.segmentation = self.logic.import_roi_file(slicer.mrmlScene, p.stiffnessVolume, roi_file, p.segmentation)
        self._updateButtons()

    def onCancel(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process = None
            self.ui.progressBar.visible = False
            self.ui.cancelButton.enabled = False
            logging.info("MREFibrosis segmentation cancelled")
            self._updateButtons()

    def onCompute(self) -> None:
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay(_("Measurement failed."), waitCursor=True):
            result, table = self._getLogic().compute(slicer.mrmlScene, p.stiffnessVolume, p.segmentation, p.validityVolume, p.preset, p.measurementTable)
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
            stiffness = self._parameterNode.stiffnessVolume
            dicom = bool(stiffness and stiffness.GetAttribute("MREFibrosis.SourceFolder"))
            written = self._getLogic().export(folder, stiffness_node=stiffness, dicom=dicom)
            slicer.util.infoDisplay(_("Wrote {0}").format(", ".join(os.path.basename(str(w)) for w in written)))


class MREFibrosisLogic(ScriptedLoadableModuleLogic):
    """Slicer's module logic slot; the real logic is MREFibrosisLib.MREFibrosisLogic (Qt-free)."""


class MREFibrosisTest(ScriptedLoadableModuleTest):
    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_ground_truth_roi_reproduces_reader_value()

    def test_ground_truth_roi_reproduces_reader_value(self):
        import json
        from pathlib import Path

        if not ensure_dependencies():
            self.skipTest("dependencies not installed")
        from mrefibrosis.synth.cohort import generate_cohort
        from MREFibrosisLib import MREFibrosisLogic as Logic

        tmp = Path(tempfile.mkdtemp())
        generate_cohort(tmp, 1, seed=5, vendor="ge", stage_mix=None, workers=1)
        exam = tmp / "exam_00000"
        logic = Logic()
        nodes = logic.load_exam(slicer.mrmlScene, exam / "dicom")
        seg = logic.import_roi_file(slicer.mrmlScene, nodes.stiffness, exam / "roi.seg.nrrd")
        result, _table = logic.compute(slicer.mrmlScene, nodes.stiffness, seg)
        truth = json.loads((exam / "truth.json").read_text())
        self.assertEqual(result.measurement.status, truth["status"])
        if truth["reader_kpa"] is not None:
            self.assertAlmostEqual(result.measurement.mean_kpa, truth["reader_kpa"], places=5)
        self.delayDisplay("MREFibrosis test passed")
