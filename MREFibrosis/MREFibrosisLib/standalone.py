"""Slicer's module-level globals for a scene that lives outside the Slicer application.

Why: the Lib reads and writes voxels with `slicer.util` (arrayFromVolume, updateVolumeFromArray),
which look up the global scene and the Volumes/Segmentations module logics as inside Slicer. A
headless front end (the browser review page on trame-slicer) and the tests build their own scene
and application logic on slicer-core; binding them here lets the Lib run unchanged on either.
"""

from __future__ import annotations

from types import SimpleNamespace

import slicer


def _accessor(logic):
    return SimpleNamespace(logic=lambda: logic)


def bind_scene(scene, volumes_logic, segmentations_logic) -> dict:
    """Make `scene` and these module logics Slicer's globals; returns what was there before, for
    `restore`. Inside the Slicer application nothing calls this: its globals are already set."""
    previous = {"mrmlScene": getattr(slicer, "mrmlScene", None), "modules": getattr(slicer, "modules", None)}
    slicer.mrmlScene = scene
    slicer.modules = SimpleNamespace(volumes=_accessor(volumes_logic), segmentations=_accessor(segmentations_logic))
    return previous


def restore(previous: dict) -> None:
    for name, value in previous.items():
        if value is None:
            if hasattr(slicer, name):
                delattr(slicer, name)
        else:
            setattr(slicer, name, value)


def standalone_scene():
    """(scene, application logic, volumes logic, segmentations logic) as Slicer registers them,
    for code that has no trame-slicer SlicerApp (tests, scripts)."""
    scene = slicer.vtkMRMLScene()
    app = slicer.vtkSlicerApplicationLogic()
    app.SetMRMLScene(scene)
    app.GetColorLogic().SetMRMLScene(scene)
    app.GetColorLogic().AddDefaultColorNodes()
    logics = []
    for name, cls in (("Volumes", slicer.vtkSlicerVolumesLogic), ("Segmentations", slicer.vtkSlicerSegmentationsModuleLogic)):
        logic = cls()
        logic.SetMRMLApplicationLogic(app)
        logic.SetMRMLScene(scene)
        app.SetModuleLogic(name, logic)
        logics.append(logic)
    return scene, app, logics[0], logics[1]
