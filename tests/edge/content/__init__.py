"""Tests of cdn_edge/content/ modules in-process (whole edges: tests/edge/test_edge_*)."""
