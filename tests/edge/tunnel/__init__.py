"""Tests of cdn_edge/tunnel/ modules in-process (whole edges: tests/edge/test_edge_tunnel*)."""
