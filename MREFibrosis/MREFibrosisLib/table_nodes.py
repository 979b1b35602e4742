"""Measurements as a vtkMRMLTableNode: one row per slice and an exam row, units in column metadata."""

from __future__ import annotations

import math

import vtk

from mrefibrosis.measure import Measurement

NUMERIC = [
    ("slice_location_mm", "mm"), ("roi_pixels", ""), ("roi_area_cm2", "cm2"), ("mean_kpa", "kPa"), ("median_kpa", "kPa"),
    ("sd_kpa", "kPa"), ("p5_kpa", "kPa"), ("p25_kpa", "kPa"), ("p75_kpa", "kPa"), ("p95_kpa", "kPa"), ("iqr_kpa", "kPa"),
    ("outside_confidence_pixels", ""),
]
TEXT = ["slice", "status", "stage", "preset"]


def _num(v) -> float:
    return float("nan") if v is None else float(v)


def fill_table(table_node, m: Measurement) -> None:
    """Rewrite the table from a measurement (kPa columns empty when indeterminate)."""
    table = vtk.vtkTable()
    cols = {}
    for name in TEXT[:1]:
        cols[name] = vtk.vtkStringArray()
    for name, _ in NUMERIC:
        cols[name] = vtk.vtkDoubleArray()
    for name in TEXT[1:]:
        cols[name] = vtk.vtkStringArray()
    for name, arr in cols.items():
        arr.SetName(name)
        table.AddColumn(arr)
    ok = m.status == "ok"

    def add(slice_id, location, st, outside, stage, preset):
        values = {
            "slice_location_mm": location, "roi_pixels": st.pixels, "roi_area_cm2": st.area_cm2,
            "mean_kpa": st.mean_kpa if ok else None, "median_kpa": st.median_kpa if ok else None, "sd_kpa": st.sd_kpa if ok else None,
            "p5_kpa": st.p5_kpa if ok else None, "p25_kpa": st.p25_kpa if ok else None, "p75_kpa": st.p75_kpa if ok else None,
            "p95_kpa": st.p95_kpa if ok else None, "iqr_kpa": st.iqr_kpa if ok else None, "outside_confidence_pixels": outside,
        }
        cols["slice"].InsertNextValue(str(slice_id))
        for name, _ in NUMERIC:
            cols[name].InsertNextValue(_num(values[name]))
        cols["status"].InsertNextValue(m.status)
        cols["stage"].InsertNextValue(stage or "")
        cols["preset"].InsertNextValue(preset or "")

    for s in m.slices:
        add(s.slice, s.slice_location_mm, s.stats, s.outside_confidence_pixels, None, None)
    add("all", None, m.pooled, sum(s.outside_confidence_pixels for s in m.slices), m.stage, m.preset)
    table_node.SetAndObserveTable(table)
    for name, unit in NUMERIC:
        if unit:
            table_node.SetColumnUnitLabel(name, unit)
        table_node.SetColumnDescription(name, name.replace("_", " "))
    table_node.Modified()


def table_value(table_node, row: int, column: str):
    t = table_node.GetTable()
    v = t.GetColumnByName(column).GetValue(row)
    return None if isinstance(v, float) and math.isnan(v) else v
