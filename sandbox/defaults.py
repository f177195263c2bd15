"""Every constant and default of the sandbox in one place."""

from __future__ import annotations

import os
from pathlib import Path

# Where baked images and the sandbox SSH key live (survives reboots of this machine).
CACHE_ENV = "FACTORY_SANDBOX_CACHE"
DEFAULT_CACHE = Path("/var/cache/factory-sandbox")
# Where running sandboxes keep their state, their tmpfs root and their ssh config.
STATE_ENV = "FACTORY_SANDBOX_STATE"
DEFAULT_STATE = Path("/run/factory-sandbox")
# The sandbox `up`, `down`, ... act on when no --name is given.
NAME_ENV = "FACTORY_SANDBOX_NAME"
DEFAULT_NAME = "sandbox"
# The Debian archive the image is baked from (and the guest's apt uses).
MIRROR_ENV = "FACTORY_SANDBOX_MIRROR"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR_ENV = "FACTORY_SANDBOX_SECURITY_MIRROR"
DEFAULT_SECURITY_MIRROR = "http://deb.debian.org/debian-security"

SUITE = "bookworm"
# The machine's extra CA certificates, trusted inside the test image (HOST-FACTS: CA trap).
EXTRA_CA_DIR = Path("/usr/local/share/ca-certificates")

# Sandbox N gets 10.231.N.0/24: the host side of its veth is .1, the machine is .2.
SUBNET_PREFIX = "10.231"
MAX_INDEX = 254
# Private network K gets 10.232.K.0/24; sandbox N on it is .N+2 (the first free from .2 if N+2 > 254).
PRIVATE_PREFIX = "10.232"
MAX_NETWORK_INDEX = 254
SSH_PORT = 22

TMPFS_SIZE = "8G"
BOOT_TIMEOUT_S = 90.0
SYSTEM_RUNNING_TIMEOUT_S = 60.0
POWEROFF_TIMEOUT_S = 30.0
# Debian bookworm's image: ~300 MB on tmpfs; a debootstrap can take minutes on a slow mirror.
BAKE_TIMEOUT_S = 1800.0

BACKENDS = ("auto", "nspawn", "chroot")

# Which apt package installs each external program we call.
APT_PACKAGE = {
    "systemd-nspawn": "systemd-container",
    "debootstrap": "debootstrap",
    "nft": "nftables",
    "ip": "iproute2",
    "tar": "tar",
    "zstd": "zstd",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "unshare": "util-linux",
    "nsenter": "util-linux",
    "mount": "mount",
    "umount": "mount",
    "chroot": "coreutils",
    "sysctl": "procps",
}

# Programs each command needs, checked before anything is changed.
TOOLS_BAKE = ("debootstrap", "tar", "zstd", "ssh-keygen", "mount", "umount", "chroot")
TOOLS_NET = ("ip", "nft")
TOOLS_UP = ("tar", "zstd", "ssh", "mount", "umount", *TOOLS_NET)
TOOLS_NSPAWN = ("systemd-nspawn",)
TOOLS_CHROOT = ("unshare", "nsenter", "chroot")

# Sbin directories are searched even when the caller's PATH lacks them (sudo, cron).
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"])


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)


def state_base() -> Path:
    return Path(os.environ.get(STATE_ENV) or DEFAULT_STATE)


def default_name() -> str:
    return os.environ.get(NAME_ENV) or DEFAULT_NAME


def mirror() -> str:
    return os.environ.get(MIRROR_ENV) or DEFAULT_MIRROR


def security_mirror() -> str:
    return os.environ.get(SECURITY_MIRROR_ENV) or DEFAULT_SECURITY_MIRROR
