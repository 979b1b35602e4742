"""Real Slicer MRML (slicer-core) helpers for tests: read and write segmentations as Slicer does."""

from collections import defaultdict

import numpy as np
import pydicom
import slicer
import vtk
from vtk.util.numpy_support import numpy_to_vtk, vtk_to_numpy

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def _matrix(m: vtk.vtkMatrix4x4) -> np.ndarray:
    return np.array([[m.GetElement(i, j) for j in range(4)] for i in range(4)])


def read_segmentation(path):
    """Load a .seg.nrrd with Slicer's storage node; return (node, segment, mask (k,j,i), ijk_to_ras with extent origin)."""
    scene = slicer.vtkMRMLScene()
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    storage = scene.AddNewNodeByClass("vtkMRMLSegmentationStorageNode")
    storage.SetFileName(str(path))
    assert storage.ReadData(node) == 1
    segmentation = node.GetSegmentation()
    seg_id = segmentation.GetNthSegmentID(0)
    img = slicer.vtkOrientedImageData()
    node.GetBinaryLabelmapRepresentation(seg_id, img)
    m = vtk.vtkMatrix4x4()
    img.GetImageToWorldMatrix(m)
    ext = img.GetExtent()
    dims = img.GetDimensions()
    arr = vtk_to_numpy(img.GetPointData().GetScalars()).reshape(dims[::-1])
    return node, segmentation.GetSegment(seg_id), arr, _matrix(m), ext


def write_segmentation(path, mask_kji, ijk_to_lps, name="Segment_1"):
    """Save a mask with Slicer's own segmentation storage node (cropped to its extent, as Slicer does)."""
    scene = slicer.vtkMRMLScene()
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    img = slicer.vtkOrientedImageData()
    k, j, i = mask_kji.shape
    img.SetDimensions(i, j, k)
    scalars = numpy_to_vtk(np.ascontiguousarray(mask_kji.astype(np.uint8)).ravel(), deep=True, array_type=vtk.VTK_UNSIGNED_CHAR)
    img.GetPointData().SetScalars(scalars)
    ras = LPS_TO_RAS @ ijk_to_lps
    m = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            m.SetElement(r, c, ras[r, c])
    img.SetImageToWorldMatrix(m)
    node.AddSegmentFromBinaryLabelmapRepresentation(img, name)
    storage = scene.AddNewNodeByClass("vtkMRMLSegmentationStorageNode")
    storage.SetFileName(str(path))
    assert storage.WriteData(node) == 1
    return node


class FolderDicomDatabase:
    """The four ctkDICOMDatabase look-ups the Lib uses, answered from real files on disk."""

    def __init__(self, folder):
        self.instances, self.series_files, self.study_series, self.series_study = {}, defaultdict(list), defaultdict(list), {}
        for f in sorted(folder.rglob("*")):
            if not f.is_file():
                continue
            ds = pydicom.dcmread(f, stop_before_pixels=True)
            self.instances[ds.SOPInstanceUID] = str(f)
            self.series_files[ds.SeriesInstanceUID].append(str(f))
            if ds.SeriesInstanceUID not in self.study_series[ds.StudyInstanceUID]:
                self.study_series[ds.StudyInstanceUID].append(ds.SeriesInstanceUID)
            self.series_study[ds.SeriesInstanceUID] = ds.StudyInstanceUID

    def fileForInstance(self, uid):
        return self.instances.get(uid, "")

    def studyForSeries(self, uid):
        return self.series_study.get(uid, "")

    def seriesForStudy(self, uid):
        return list(self.study_series.get(uid, []))

    def filesForSeries(self, uid):
        return list(self.series_files.get(uid, []))
