"""Runs agents (spec, runner, sandbox, output, metrics, frameworks); it may import contract only."""
