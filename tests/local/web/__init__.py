"""Tests of the local server's HTTP layer."""
