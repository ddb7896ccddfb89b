"""How the server finds cgroups for its runs, on this machine's real cgroup file systems."""

from __future__ import annotations

from pathlib import Path

import pytest

from vm0_notebook.local.runtime.cgroups import RunCgroups

UNIFIED = Path("/sys/fs/cgroup/unified")


def test_every_limit_is_a_cgroup_or_the_reason_is_given() -> None:
    found = RunCgroups.detect("vm0-local-test-detect")
    try:
        limits = found.limits()
        assert set(limits) == {"memory", "cpu", "processes"}
        assert set(limits.values()) <= {"cgroup", "rlimit"}
        if "rlimit" in limits.values():
            assert found.problem
    finally:
        found.close()


def test_a_v2_hierarchy_without_the_controllers_is_refused_saying_which_are_missing() -> None:
    controllers = UNIFIED / "cgroup.controllers"
    if not controllers.exists() or "memory" in controllers.read_text().split():
        pytest.skip("no cgroup v2 hierarchy without controllers here (a hybrid system has one)")
    found = RunCgroups.detect("vm0-local-test-v2", root=UNIFIED)
    assert found.limits() == {"memory": "rlimit", "cpu": "rlimit", "processes": "rlimit"}
    assert found.problem is not None and "lacks" in found.problem and "memory" in found.problem
