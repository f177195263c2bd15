"""Host tests run against a real sandbox host (systemd-nspawn) brought up by `python -m sandbox`.

`sandbox_host` is session-scoped: one machine per test run, named after the run, always
torn down (and `down` itself fails if it leaves anything behind). Without root or the
tools, every test that needs it is skipped with the reason.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from sandbox_helpers import REPO, SandboxHost, missing_reason, run_name, sandbox_up

# The sandbox tool is a package at the repository root, not installed into the venv.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


@pytest.fixture(scope="session")
def sandbox_host() -> Iterator[SandboxHost]:
    """One systemd-nspawn sandbox host for the whole test session."""
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    with sandbox_up(run_name("test")) as host:
        yield host
