"""Tests of the local server's runtime layer."""
