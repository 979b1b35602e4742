"""Measurements as a vtkMRMLTableNode: one row per slice and an exam row, units in column metadata."""

from __future__ import annotations

import math

import vtk

from mrefibrosis.results.exam_result import ExamResult

NUMERIC = [
    ("slice_location_mm", "mm"),
    ("roi_pixels", ""),
    ("roi_area_cm2", "cm2"),
    ("mean_kpa", "kPa"),
    ("median_kpa", "kPa"),
    ("sd_kpa", "kPa"),
    ("p5_kpa", "kPa"),
    ("p25_kpa", "kPa"),
    ("p75_kpa", "kPa"),
    ("p95_kpa", "kPa"),
    ("iqr_kpa", "kPa"),
    ("outside_confidence_pixels", ""),
]
TEXT = ["slice", "status", "stage", "preset", "status_detail"]


def _num(v) -> float:
    return float("nan") if v is None else float(v)


def fill_table(table_node, result: ExamResult) -> None:
    """Rewrite the table from the result's own rows (the CSV's rows: kPa empty when indeterminate,
    the exam row carrying the status with its reason or warnings)."""
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
    for row in result.table_rows():
        for name in TEXT:
            cols[name].InsertNextValue("" if row[name] is None else str(row[name]))
        for name, _ in NUMERIC:
            cols[name].InsertNextValue(_num(row[name]))
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
