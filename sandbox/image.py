"""The sandbox image: Debian 12 baked once with debootstrap, cached as a .tar.zst.

The cache file's name holds a digest of the recipe (suite, packages, files, the machine's
extra CA certificates), so the image is baked again only when the recipe changes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from . import mounts, runner
from .defaults import BAKE_TIMEOUT_S, EXTRA_CA_DIR, SUITE, TOOLS_BAKE, mirror, security_mirror

log = logging.getLogger("sandbox")

# Bump when the bake steps change in a way the recipe's data does not show.
RECIPE_VERSION = 1
BAKE_HOSTNAME = "sandbox"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
KEY_NAME = "id_ed25519"
TAR = ("tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "--zstd")

# What a small Debian VPS has: minbase plus sshd, systemd as init, and the usual tools.
PACKAGES = (
    "openssh-server",
    "python3",
    "sudo",
    "procps",
    "ca-certificates",
    "systemd",
    "systemd-sysv",
    "dbus",
    "libpam-systemd",
    "cron",
    "iproute2",
    "iputils-ping",
    "curl",
    "wget",
    "gnupg",
    "less",
    "logrotate",
    "lsb-release",
    "netbase",
    "tzdata",
    "xz-utils",
)


def guest_files(hostname: str, mirror_url: str, security_url: str) -> dict[str, tuple[str, int]]:
    """Files written into the image: path -> (content, mode)."""
    env_keep = "NODE_EXTRA_CA_CERTS"
    return {
        "/etc/apt/sources.list.d/debian.sources": (
            f"Types: deb\nURIs: {mirror_url}\nSuites: {SUITE} {SUITE}-updates\n"
            "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
            f"Types: deb\nURIs: {security_url}\nSuites: {SUITE}-security\n"
            "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n",
            0o644,
        ),
        "/etc/hostname": (f"{hostname}\n", 0o644),
        "/etc/hosts": (hosts_file(hostname), 0o644),
        "/etc/ssh/sshd_config.d/10-factory-sandbox.conf": (
            "PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n",
            0o644,
        ),
        # The test image trusts the machine's extra CAs (HOST-FACTS: the CA trust trap):
        # Node reads only NODE_EXTRA_CA_CERTS, which sudo drops unless told to keep it,
        # and services started by systemd see neither /etc/environment nor sudo.
        "/etc/environment": (f"{env_keep}={CA_BUNDLE}\n", 0o644),
        "/etc/sudoers.d/factory-sandbox-ca": (f'Defaults env_keep += "{env_keep}"\n', 0o440),
        "/etc/systemd/system.conf.d/factory-sandbox-ca.conf": (
            f"[Manager]\nDefaultEnvironment={env_keep}={CA_BUNDLE}\n",
            0o644,
        ),
        "/etc/pip.conf": (f"[global]\ncert = {CA_BUNDLE}\n", 0o644),
    }


def hosts_file(hostname: str) -> str:
    return (
        f"127.0.0.1\tlocalhost\n127.0.1.1\t{hostname}\n\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\n"
        "ff02::2\tip6-allrouters\n"
    )


@dataclass(frozen=True)
class Recipe:
    """Everything that decides what the image holds; its digest names the cache file."""

    suite: str
    packages: tuple[str, ...]
    files: tuple[tuple[str, str, int], ...]
    ca_certs: tuple[tuple[str, str], ...]  # (file name, sha256 of its content)
    version: int = RECIPE_VERSION

    def digest(self) -> str:
        data = json.dumps(
            [self.suite, self.packages, self.files, self.ca_certs, self.version],
            sort_keys=True,
        )
        return hashlib.sha256(data.encode()).hexdigest()[:16]

    def image_name(self) -> str:
        return f"debian-{self.suite}-{self.digest()}.tar.zst"


def extra_ca_certs(ca_dir: Path = EXTRA_CA_DIR) -> list[Path]:
    return sorted(p for p in ca_dir.glob("*.crt") if p.is_file()) if ca_dir.is_dir() else []


def default_recipe(ca_dir: Path = EXTRA_CA_DIR) -> Recipe:
    files = guest_files(BAKE_HOSTNAME, mirror(), security_mirror())
    return Recipe(
        suite=SUITE,
        packages=PACKAGES,
        files=tuple((path, text, mode) for path, (text, mode) in sorted(files.items())),
        ca_certs=tuple((p.name, hashlib.sha256(p.read_bytes()).hexdigest()) for p in extra_ca_certs(ca_dir)),
    )


# The cache.


def key_path(cache: Path) -> Path:
    return cache / "ssh" / KEY_NAME


def ensure_key(cache: Path) -> Path:
    """The sandbox's SSH keypair (no passphrase), made once per cache directory."""
    key = key_path(cache)
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True)
        key.parent.chmod(0o700)
        runner.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "factory-sandbox", "-f", str(key)])
    return key


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on path, so two commands never bake (or allocate) at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cached_image(cache: Path, recipe: Recipe) -> Path | None:
    path = cache / recipe.image_name()
    return path if path.is_file() else None


def ensure_image(cache: Path, recipe: Recipe, *, force: bool = False) -> tuple[Path, bool]:
    """(path of the image, whether it was baked now): bake only if missing or forced."""
    ensure_key(cache)
    with locked(cache / "bake.lock"):
        found = cached_image(cache, recipe)
        if found and not force:
            return found, False
        runner.require_tools(TOOLS_BAKE)
        return bake(cache, recipe), True


def bake(cache: Path, recipe: Recipe) -> Path:
    """debootstrap + apt upgrade + our files + CA trust, packed into the cache."""
    target = cache / recipe.image_name()
    clean_stale_work(cache)
    work = Path(tempfile.mkdtemp(prefix=".bake-", dir=cache))
    root = work / "root"
    root.mkdir()
    log.info("baking %s (debootstrap %s, a minute or two)", target.name, recipe.suite)
    try:
        # Building on tmpfs: file creation on this disk is the slow part (~0.8 ms each).
        mounts.mount_tmpfs(root, "4G")
        runner.run(
            [
                "debootstrap",
                "--variant=minbase",
                "--components=main",
                f"--include={','.join(recipe.packages)}",
                recipe.suite,
                str(root),
                mirror(),
            ],
            timeout=BAKE_TIMEOUT_S,
        )
        customize(root, recipe, ensure_key(cache))
        packed = work / "image.tar.zst"
        runner.run(
            [
                "tar",
                "--numeric-owner",
                "--xattrs",
                "--xattrs-include=*",
                "--zstd",
                "-C",
                str(root),
                "-cf",
                str(packed),
                ".",
            ],
            env={"ZSTD_NBTHREADS": "0"},
            timeout=600,
        )
        os.replace(packed, target)
    finally:
        mounts.unmount_tree(work)
        shutil.rmtree(work, ignore_errors=True)
    for old in cache.glob(f"debian-{recipe.suite}-*.tar.zst"):
        if old != target:
            old.unlink()
            log.info("removed old image %s", old.name)
    return target


def customize(root: Path, recipe: Recipe, key: Path) -> None:
    """Everything after debootstrap: sources, upgrade, files, CA trust, the root key."""
    (root / "etc/apt/sources.list").unlink(missing_ok=True)
    for path, text, mode in recipe.files:
        write(root, path, text, mode)
    # debootstrap removes its policy-rc.d, but make sure: under nspawn, services must start.
    policy = root / "usr/sbin/policy-rc.d"
    with mounts.chroot_mounts(root):
        # Nothing may start on this machine's network while we work in the chroot.
        write(root, "/usr/sbin/policy-rc.d", "#!/bin/sh\nexit 101\n", 0o755)
        try:
            env = {"DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C.UTF-8"}
            chroot = ["chroot", str(root)]
            runner.run([*chroot, "apt-get", "update", "-q"], env=env, timeout=600)
            runner.run(
                [*chroot, "apt-get", "-y", "-q", "-o", "Dpkg::Options::=--force-confold", "dist-upgrade"],
                env=env,
                timeout=BAKE_TIMEOUT_S,
            )
            runner.run([*chroot, "apt-get", "clean"], env=env)
            for cert in extra_ca_certs():
                shutil.copy(cert, root / "usr/local/share/ca-certificates" / cert.name)
            runner.run([*chroot, "update-ca-certificates"], env=env)
        finally:
            policy.unlink(missing_ok=True)
    install_key(root, key)
    # Each sandbox gets its own machine id at `up`; an empty one here would mean "first boot".
    write(root, "/etc/machine-id", "", 0o444)


def install_key(root: Path, key: Path) -> None:
    pub = Path(str(key) + ".pub").read_text()
    ssh_dir = root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    write(root, "/root/.ssh/authorized_keys", pub, 0o600)


def write(root: Path, path: str, text: str, mode: int) -> None:
    """Write a file inside root (path is absolute in the guest) with this mode."""
    dest = root / path.lstrip("/")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_symlink():
        dest.unlink()  # e.g. /etc/resolv.conf: never write through a link to the host
    dest.write_text(text)
    dest.chmod(mode)


def unpack(image: Path, root: Path) -> None:
    runner.run(
        [*TAR, "-C", str(root), "-xf", str(image)],
        timeout=300,
    )


def clean_stale_work(cache: Path) -> None:
    """Remove what a killed bake left (its tmpfs and chroot mounts included)."""
    for work in cache.glob(".bake-*"):
        mounts.unmount_tree(work)
        shutil.rmtree(work, ignore_errors=True)
