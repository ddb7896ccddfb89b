"""Tests of the local server's store layer."""
