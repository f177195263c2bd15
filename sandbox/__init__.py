"""The local sandbox host: a throwaway Debian 12 "VPS" on this machine.

Real systemd (systemd-nspawn -b) in its own network namespace with its own address and
sshd on port 22, booted from a debootstrap image baked once and cached, root on tmpfs.
A chroot + unshare + sshd fallback serves where nspawn cannot run (no systemd there).
`python -m sandbox --help` is the reference; sandbox/README.md tells the why.
"""

from __future__ import annotations

__version__ = "0.1.0"
