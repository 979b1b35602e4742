"""Batch scoring of an archive on Ray Data: the same code on one workstation or a cluster."""
