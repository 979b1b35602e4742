"""Evaluation of a model on a labelled cohort: the seed paper's metrics as a report."""
