"""The factory on a host: `pyinfra inventory.py deploy.py` (`--dry` shows the plan; `-y` skips the question).

Packages, the Node tools, the `factory` user, the runtime (a wheel built from this
checkout), the target repository, the rendered configuration and jobs, PM2 and the
agents' tmux sessions. Every step is idempotent: a second run changes nothing. Host data
and secrets are checked first (provision/hostdata.py), before anything changes.
"""

from __future__ import annotations

import os
import sys
from io import StringIO
from pathlib import Path
from typing import Any, cast

REPO = Path(__file__).resolve().parent
sys.path.insert(0, str(REPO))

from pyinfra import logger  # noqa: E402
from pyinfra.api.deploy import deploy  # noqa: E402
from pyinfra.api.exceptions import DeployError  # noqa: E402
from pyinfra.api.operation import OperationMeta  # noqa: E402
from pyinfra.context import host  # noqa: E402
from pyinfra.operations import apt, files, pip, server, systemd  # noqa: E402

from factoryctl.core.jobspecs import JOBS  # noqa: E402
from factoryctl.rules.detect import toolchain  # noqa: E402
from provision import hostdata, layout, templating  # noqa: E402
from provision.facts import HasSystemd, RepoFiles  # noqa: E402
from provision.operations import (  # noqa: E402
    changed,
    gate_key,
    git_clone,
    install_wheel,
    npm_global,
    pm2_apps,
    sample_origin,
    sandbox_works,
    secret_file,
    seed_files,
    tmux_layout,
)
from provision.wheel import Wheel, WheelBuildFailed, build_wheel  # noqa: E402

APT_PACKAGES = [
    "git", "tmux", "nodejs", "npm", "python3-venv", "cron", "logrotate",
    "ca-certificates", "openssh-client", "procps", "bubblewrap",
]  # fmt: skip
APT_CACHE_S = 24 * 3600
GIT_SSH = f"ssh -i {layout.DEPLOY_KEY} -o IdentitiesOnly=yes -o StrictHostKeyChecking=accept-new"


def _put(name: str, text: str, dest: str, mode: str, user: str = "root", group: str = "root") -> OperationMeta:
    meta: OperationMeta = files.put(name=name, src=StringIO(text), dest=dest, user=user, group=group, mode=mode)
    return meta


def _directory(path: str, mode: str, user: str = layout.USER, group: str = layout.GROUP) -> None:
    files.directory(name=f"Ensure {path}/", path=path, user=user, group=group, mode=mode)


@deploy("System packages")
def system_packages() -> None:
    apt.packages(
        name="Ensure git, tmux, Node, npm, Python venv, cron, logrotate and bubblewrap (the agents' sandbox)",
        packages=APT_PACKAGES,
        update=True,
        cache_time=APT_CACHE_S,
        no_recommends=True,
    )


@deploy("Node tools")
def node_tools(checked: hostdata.Checked) -> None:
    npm_global(
        name=f"Ensure PM2 {checked.pm2_version} and Claude Code {checked.claude_code_version} (npm -g)",
        packages={"pm2": checked.pm2_version, "@anthropic-ai/claude-code": checked.claude_code_version},
    )


@deploy("The factory user")
def factory_user() -> None:
    server.user(  # noqa: S604 - `shell` is the user's login shell, not a subprocess flag
        name=f"Ensure the system user {layout.USER} (the services run as it, never as root)",
        user=layout.USER,
        system=True,
        home=layout.HOME,
        shell="/bin/bash",
        create_home=True,
    )
    _directory(layout.HOME, "750")
    for path in (layout.FACTORY_HOME, layout.STATE_DIR, layout.LOCKS_DIR):
        _directory(path, "755")
    _directory(layout.LOGS_DIR, "750")  # the job logs are the factory user's (and group's) alone
    sandbox_works(name=f"Ensure {layout.USER} can run the sandbox (bubblewrap, user namespaces)")


@deploy("The runtime")
def runtime(wheel: Wheel, extras: tuple[str, ...]) -> OperationMeta:
    for path in (layout.OPT, layout.WHEELS, layout.BIN):
        _directory(path, "755", user="root", group="root")
    pip.venv(name=f"Ensure the runtime's venv {layout.VENV}", path=layout.VENV, python="python3")
    remote = f"{layout.WHEELS}/{wheel.name}"
    files.put(name=f"Ensure the runtime's wheel {wheel.name}", src=str(wheel.path), dest=remote, mode="644")
    installed: OperationMeta = install_wheel(
        name="Ensure the runtime is installed from this wheel (pip only when it changed)",
        wheel=remote,
        sha256=wheel.sha256,
        extras=extras,
    )
    files.link(name="Ensure factoryctl is on PATH", path="/usr/local/bin/factoryctl", target=layout.FACTORYCTL)
    return installed


@deploy("The target repository")
def repository(checked: hostdata.Checked) -> None:
    url = checked.repo.url
    if checked.repo.is_sample:
        files.sync(
            name="Ensure the bundled sample project",
            src=str(REPO / "templates" / "sample-repo"),
            dest=layout.SAMPLE_SRC,
            user="root",
            group="root",
            mode="644",
            dir_mode="755",
            delete=True,
            exclude=["*.pyc"],
            exclude_dir=["__pycache__"],
        )
        sample_origin(
            name=f"Ensure the demo's shared remote {layout.SAMPLE_ORIGIN}",
            src=layout.SAMPLE_SRC,
            origin=layout.SAMPLE_ORIGIN,
            branch=checked.repo.branch,
        )
        gate_key(name="Ensure the merge gate's key (0600): only the gate may update main", dest=layout.GATE_KEY)
        hook = templating.render("origin-update-hook.sh.j2", templating.context(checked))
        _put("Ensure the shared remote's update hook (main moves only by the gate)", hook,
             f"{layout.SAMPLE_ORIGIN}/hooks/update", "755", layout.USER, layout.GROUP)  # fmt: skip
        url = layout.SAMPLE_ORIGIN
    if checked.deploy_key is not None:
        _directory(f"{layout.HOME}/.ssh", "700")
        secret_file(
            name="Ensure the deploy key (0600)",
            content=checked.deploy_key.read_text(),
            dest=layout.DEPLOY_KEY,
        )
    git_clone(
        name=f"Ensure the clone of {url} ({checked.repo.branch})",
        url=url,
        branch=checked.repo.branch,
        dest=str(layout.PATHS.repo_dir(checked.settings.repo.path)),
        ssh_command=GIT_SSH if checked.deploy_key is not None else None,
    )


@deploy("The repository's starting skills")
def skills() -> None:
    names = sorted(p.name for p in (REPO / "skills").glob("*.md"))
    files.sync(
        name=f"Ensure the starting skills in {layout.SKILLS_SRC}",
        src=str(REPO / "skills"),
        dest=layout.SKILLS_SRC,
        user="root",
        group="root",
        mode="644",
        dir_mode="755",
        delete=True,
    )
    _directory(layout.SKILLS_DIR, "755")
    seed_files(
        name=f"Ensure {layout.SKILLS_DIR} has the starting skills (a skill already there is never overwritten)",
        names=names,
        src=layout.SKILLS_SRC,
        dest=layout.SKILLS_DIR,
    )


@deploy("Configuration and jobs")
def configuration(checked: hostdata.Checked, has_systemd: bool) -> dict[str, OperationMeta]:
    repo_files = host.get_fact(RepoFiles, path=str(layout.PATHS.repo_dir(checked.settings.repo.path)))
    checked, detected = hostdata.with_detected(checked, repo_files)
    if detected is not None:
        names = ", ".join(c["name"] for c in detected.checks) or "none"
        logger.info(f"{host.print_prefix}no factory_checks: detected in the repository: {names}")
    elif not checked.config.get("checks"):  # the clone is made by this deploy: nothing to read yet
        logger.warning(
            f"{host.print_prefix}no factory_checks and no clone yet: the checks and their tools are "
            "detected from the clone, so run the deploy again once it is made"
        )
    toolchain_for(checked)
    text = templating.render_all(checked, systemd=has_systemd)
    ops = {
        # Owned by root: the runtime only reads it; nothing running as the factory user may rewrite it.
        "config": _put(
            "Ensure factory.toml (root's, read-only to the factory)", text["factory.toml.j2"], layout.CONFIG_FILE, "644"
        ),
        "secrets": secret_file(
            name=f"Ensure the secrets file (0600): {', '.join(checked.secrets) or 'none set'}",
            content=text["secrets.env.j2"],
            dest=layout.SECRETS_FILE,
        ),
        "run": _put("Ensure factory-run (the jobs' environment)", text["factory-run.sh.j2"], layout.RUN, "755"),
        "tmux": _put("Ensure factory-tmux (the agents' tmux layout)", text["factory-tmux.sh.j2"], layout.TMUX, "755"),
        "ecosystem": _put(
            "Ensure PM2's ecosystem.config.js",
            text["ecosystem.config.js.j2"],
            layout.ECOSYSTEM,
            "644",
            layout.USER,
            layout.GROUP,
        ),
    }
    _put("Ensure the cron jobs (/etc/cron.d/factory)", text["cron.j2"], layout.CRON_FILE, "644")
    _put("Ensure log rotation (/etc/logrotate.d/factory)", text["logrotate.j2"], layout.LOGROTATE_FILE, "644")
    if checked.scripted:
        _directory(layout.DEMO_DIR, "755")
        for scenario in hostdata.SCENARIO_FILES:
            files.put(
                name=f"Ensure the scripted agent's demo scenario {scenario}",
                src=str(checked.scenarios / scenario),
                dest=f"{layout.DEMO_DIR}/{scenario}",
                mode="644",
            )
    return ops


def toolchain_for(checked: hostdata.Checked) -> None:
    """The package managers and tools the repository's setup and checks start (uv, pnpm, yarn, ...)."""
    commands = [checked.settings.repo.setup, *(c.command for c in checked.settings.checks)]
    tools = toolchain(commands, checked.tools_npm)
    if tools.npm:
        listed = ", ".join(f"{name} {version}" for name, version in tools.npm.items())
        npm_global(name=f"Ensure the repository's Node tools: {listed} (npm -g)", packages=dict(tools.npm))
    for package in tools.pip:
        pip.packages(name=f"Ensure {package} (the repository's setup or checks run it)", packages=[package],
                     virtualenv=layout.VENV)  # fmt: skip
        files.link(name=f"Ensure {package} is on PATH", path=f"/usr/local/bin/{package}",
                   target=f"{layout.VENV}/bin/{package}")  # fmt: skip


@deploy("PM2 and the agents' tmux sessions")
def processes(checked: hostdata.Checked, has_systemd: bool, restart_after: list[OperationMeta]) -> None:
    if has_systemd:
        text = templating.render("pm2-factory.service.j2", templating.context(checked))
        unit = _put(f"Ensure PM2's boot unit {layout.PM2_UNIT}", text, layout.PM2_UNIT_FILE, "644")
        if changed([unit]):
            systemd.daemon_reload(name="Ensure systemd read PM2's boot unit")
        systemd.service(
            name=f"Ensure {layout.PM2_UNIT} is enabled and running",
            service=layout.PM2_UNIT,
            running=True,
            enabled=True,
        )
    else:
        logger.warning(
            f"{host.print_prefix}no systemd on this host: PM2's boot unit is skipped; "
            "a cron @reboot line runs `pm2 resurrect` instead"
        )
    pm2_apps(
        name="Ensure the PM2 apps are online (started or reloaded only when what they read changed) and saved",
        ecosystem=layout.ECOSYSTEM,
        apps=templating.pm2_app_names(checked.jobs),
        owned=templating.pm2_app_names(JOBS),
        restart_after=restart_after,
    )
    tmux_layout(
        name="Ensure the agents' tmux sessions (restarted only when what they read changed)",
        script=layout.TMUX,
        sessions=[s["name"] for s in templating.context(checked)["sessions"]],
        restart_after=restart_after,
    )


def checked_host_data() -> hostdata.Checked:
    """This host's data and the environment, validated; DeployError (before any change) if not."""
    try:
        data: dict[str, Any] = host.data.dict()  # type: ignore[no-untyped-call]
        return hostdata.check(data, os.environ, host=host.name)
    except hostdata.HostDataError as exc:
        raise DeployError(str(exc)) from None


def main() -> None:
    """Check first, then every step in order; `configuration` returns what restarts follow."""
    checked = checked_host_data()
    try:
        wheel = build_wheel(REPO)
    except WheelBuildFailed as exc:
        raise DeployError(str(exc)) from None
    for line in checked.left_out:
        logger.info(f"{host.print_prefix}{line}")
    has_systemd = bool(host.get_fact(HasSystemd))

    system_packages()
    node_tools(checked=checked)
    factory_user()
    # The shared state in PostgreSQL ([state] url) needs psycopg in the runtime's venv.
    installed = runtime(wheel=wheel, extras=("postgres",) if checked.settings.state.url else ())
    repository(checked=checked)
    skills()
    # pyinfra types a @deploy's result as one OperationMeta; this one returns several.
    ops = cast(dict[str, OperationMeta], configuration(checked=checked, has_systemd=has_systemd))
    restart_after = [installed, ops["config"], ops["secrets"], ops["run"], ops["ecosystem"]]
    processes(checked=checked, has_systemd=has_systemd, restart_after=restart_after)


main()
