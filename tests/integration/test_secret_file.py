"""The deploy's secret_file operation, run by the real pyinfra on this machine (@local)."""

from __future__ import annotations

import grp
import os
import pwd
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYINFRA = str(Path(sys.executable).parent / "pyinfra")

DEPLOY = """\
import os
from pathlib import Path
from provision.operations import secret_file

secret = Path(os.environ["SECRET_FROM"]).read_text()
secret_file("Ensure the secrets file", secret, os.environ["DEST"], os.environ["OWNER"])
"""


def deploy(tmp_path: Path, secret: str, dest: Path) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "secret_deploy.py"
    script.write_text(DEPLOY)
    (tmp_path / "secret.in").write_text(secret)
    owner = f"{pwd.getpwuid(os.getuid()).pw_name}:{grp.getgrgid(os.getgid()).gr_name}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SECRET_FROM": str(tmp_path / "secret.in")}
    env |= {"DEST": str(dest), "OWNER": owner}
    return subprocess.run(
        [PYINFRA, "@local", str(script), "-y"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_secret_goes_to_the_command_that_writes_it_and_never_to_a_facts_stdin(tmp_path: Path) -> None:
    # pyinfra hands a fact the running operation's arguments, _stdin with them: the facts that
    # look at the file (stat, sha1sum) were sent the secret, and one that exited before the
    # write lost the deploy its ssh channel ("Socket is closed"). A secret larger than a pipe's
    # buffer makes that race a certainty here: stat does not read its stdin, so the write fails.
    secret = "KEY=" + "s" * (1 << 20) + "\n"
    dest = tmp_path / "secrets.env"
    first = deploy(tmp_path, secret, dest)
    assert first.returncode == 0 and "[@local] Success" in first.stderr, first.stderr[-3000:]
    assert dest.read_text() == secret and dest.stat().st_mode & 0o777 == 0o600

    # Again, the file there and the same: both facts run, nothing changes.
    again = deploy(tmp_path, secret, dest)
    assert again.returncode == 0 and "[@local] No changes" in again.stderr, again.stderr[-3000:]

    # The right secret with the wrong mode: 0600 again, by the command that reads its stdin
    # (a chmod alone, sent the secret it does not read, broke the pipe the same way).
    dest.chmod(0o644)
    fixed = deploy(tmp_path, secret, dest)
    assert fixed.returncode == 0 and "[@local] Success" in fixed.stderr, fixed.stderr[-3000:]
    assert dest.read_text() == secret and dest.stat().st_mode & 0o777 == 0o600
    assert not Path(f"{dest}.tmp").exists()
