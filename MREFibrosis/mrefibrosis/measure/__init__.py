"""Stiffness over an ROI as readers report it: per-slice and pooled statistics, the verdict (status,
reason, warnings), the reader's quality checks, and fibrosis staging presets kept as data."""
