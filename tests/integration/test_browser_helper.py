"""The demo's screenshot helper (tests/browser.py): it waits for every process Chromium started and
removes its own profile, even when one of them lingers and keeps writing into it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.browser import browser, chromium, group_members
from tests.populate import populate
from tests.serving import TOKEN, serving

ROOT = Path(__file__).resolve().parents[2]

needs_chromium = pytest.mark.skipif(
    chromium() is None and os.environ.get("CI") != "true",
    reason="chromium is not installed (scripts/setup.sh installs Debian's package)",
)

# Chromium, plus a process of its group that ignores SIGTERM and keeps writing into the profile:
# what a slow first start on a fresh machine looks like (the demo failed with ENOTEMPTY on 'Default').
STRAGGLER = """#!/bin/sh
for arg; do case "$arg" in --user-data-dir=*) profile="${arg#--user-data-dir=}" ;; esac; done
here=$(dirname "$0")
( trap '' TERM; while :; do mkdir -p "$profile/Default"; date > "$profile/Default/straggler"; sleep 0.05; done ) &
echo "$!" > "$here/straggler.pid"
echo "$profile" > "$here/profile"
exec "%s" "$@"
"""


def png_width(path: Path) -> int:
    return int.from_bytes(path.read_bytes()[16:20], "big")


@needs_chromium
def test_every_process_is_waited_for_and_the_profile_removed_even_with_a_straggler(tmp_path: Path) -> None:
    exe = tmp_path / "chromium-with-straggler"
    exe.write_text(STRAGGLER % chromium())
    exe.chmod(0o755)
    with browser(exe=[str(exe)]) as tab:
        tab.open("data:text/html,<title>x</title>hello")
        straggler = int((tmp_path / "straggler.pid").read_text())
        group = os.getpgid(straggler)
        profile = Path((tmp_path / "profile").read_text().strip())
        assert group != os.getpgid(0)  # Chromium leads a group of its own
        assert (profile / "Default" / "straggler").exists()
    assert group_members(group) == []  # nothing Chromium started is left running
    assert not profile.exists()  # and the temporary profile is gone, without an error


@needs_chromium
def test_the_demo_screenshot_command_saves_the_whole_page_and_leaves_nothing_behind(home: Path, tmp_path: Path) -> None:
    populate(home, datetime.now(UTC))
    scratch = Path(tempfile.mkdtemp())  # short: Chromium's socket paths under TMPDIR must stay under 108 bytes
    (scratch / "home").mkdir()
    out = tmp_path / "status-page.png"
    try:
        with serving(home) as srv:
            done = subprocess.run(
                [sys.executable, "-m", "tests.browser", srv.url + "/", str(out)], cwd=ROOT, capture_output=True,
                text=True, timeout=180,
                # As on a fresh machine: a HOME without a browser profile or a font cache of its own.
                env={**os.environ, "FACTORY_HTTP_TOKEN": TOKEN, "TMPDIR": str(scratch), "HOME": str(scratch / "home"),
                     "XDG_CACHE_HOME": str(scratch / "home" / ".cache"), "XDG_CONFIG_HOME": str(scratch / "home")},
            )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"saved {out}" and "warning" not in done.stderr
        assert png_width(out) == 1280  # the window's width: nothing cut off at the right
        assert [p.name for p in scratch.iterdir()] == ["home"]  # its profile and Chromium's temporary files are gone
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
