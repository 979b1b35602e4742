"""Real Slicer MRML (slicer-core) helpers for tests: read and write segmentations as Slicer does."""

import numpy as np
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
