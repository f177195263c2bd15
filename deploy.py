"""The factory on a host: `pyinfra inventory.py deploy.py` (`--dry` shows the plan; `-y` skips the question).

Packages, the Node tools, the `factory` user, the runtime (a wheel built from this
checkout), the target repository, the rendered configuration and jobs, PM2 and the
agents' tmux sessions. Every step is idempotent: a second run changes nothing. Host data
and secrets are checked first (provision/hostdata.py), before anything changes.
"""

from __future__ import annotations

import os
import subprocess
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
from pyinfra.facts.server import LinuxDistribution  # noqa: E402
from pyinfra.operations import apt, files, pip, server, systemd  # noqa: E402

from factoryctl.core.jobspecs import JOBS  # noqa: E402
from factoryctl.rules.detect import toolchain  # noqa: E402
from provision import hostdata, layout, templating  # noqa: E402
from provision.facts import HasSystemd, RepoFiles  # noqa: E402
from provision.operations import (  # noqa: E402
    changed,
    db_role,
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
    fleet = checked.fleet
    if checked.repo.is_sample and fleet is not None and checked.role == "worker":
        # The demo's origin lives on the gate: a worker fetches and pushes over ssh with the deploy key.
        url = f"{layout.USER}@{ssh_address(fleet.db_host)}:{layout.SAMPLE_ORIGIN}"
    elif checked.repo.is_sample:
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
    if checked.repo.is_sample and fleet is not None and checked.role == "gate" and checked.deploy_key is not None:
        line = origin_authorized_key(public_key(checked.deploy_key), checked.db_clients)
        _put("Ensure the workers may fetch and push the demo's origin over ssh (git-shell, from their addresses)",
             line, layout.AUTHORIZED_KEYS, "600", layout.USER, layout.GROUP)  # fmt: skip
    git_clone(
        name=f"Ensure the clone of {url} ({checked.repo.branch})",
        url=url,
        branch=checked.repo.branch,
        dest=str(layout.PATHS.repo_dir(checked.settings.repo.path)),
        ssh_command=GIT_SSH if checked.deploy_key is not None else None,
    )


def ssh_address(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def public_key(private_key: Path) -> str:
    """The deploy key's public half: KEY.pub beside it, else what `ssh-keygen -y` derives."""
    pub = private_key.with_name(private_key.name + ".pub")
    if pub.is_file():
        return pub.read_text().strip()
    try:
        done = subprocess.run(["ssh-keygen", "-y", "-f", str(private_key)], capture_output=True, text=True,
                              timeout=30, check=True, stdin=subprocess.DEVNULL)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        raise DeployError(f"cannot read the public key of {private_key} (put it beside it as KEY.pub)") from None
    return done.stdout.strip()


def origin_authorized_key(key: str, clients: tuple[str, ...]) -> str:
    """The gate's authorized_keys for the demo's origin: the deploy key, from the workers' addresses,
    able to run git's fetch and push only (git-shell); main still moves only by the gate's key."""
    options = f'from="{",".join(clients)}",restrict,command="git-shell -c \\"$SSH_ORIGINAL_COMMAND\\""'
    return f"{options} {key}\n"


@deploy("The shared state: PostgreSQL on the gate")
def gate_database(checked: hostdata.Checked, version: str) -> None:
    apt.packages(name="Ensure PostgreSQL and nftables", packages=["postgresql", "nftables"],
                 update=True, cache_time=APT_CACHE_S, no_recommends=True)  # fmt: skip
    text = templating.render_fleet(checked)
    main = f"/etc/postgresql/{version}/main"
    address = checked.fleet.private_address if checked.fleet else ""
    conns = hostdata.pg_max_connections(checked.fleet.workers) if checked.fleet else 0
    conf = _put(f"Ensure PostgreSQL {version} listens on localhost and {address}, for {conns} connections",
                text["postgresql-factory.conf.j2"], f"{main}/conf.d/{layout.PG_CONF_NAME}", "644", "postgres",
                "postgres")  # fmt: skip
    hba = _put("Ensure pg_hba.conf admits the factory's role from the workers' addresses only (scram-sha-256)",
               hostdata.pg_hba(checked.db_clients), f"{main}/pg_hba.conf", "640", "postgres", "postgres")  # fmt: skip
    files.directory(name="Ensure postgresql@.service.d/", path=str(Path(layout.PG_UNIT_DROPIN).parent))
    dropin = _put("Ensure PostgreSQL starts after the network is up (it binds the private address)",
                  layout.PG_UNIT_DROPIN_TEXT, layout.PG_UNIT_DROPIN, "644")  # fmt: skip
    if changed([dropin]):
        systemd.daemon_reload(name="Ensure systemd read PostgreSQL's drop-in")
    systemd.service(name="Ensure PostgreSQL is enabled and running", service="postgresql", running=True, enabled=True)
    if changed([conf]):
        systemd.service(name="Ensure PostgreSQL restarted (its settings changed)", service="postgresql",
                        running=True, restarted=True)  # fmt: skip
    elif changed([hba]):
        systemd.service(name="Ensure PostgreSQL reloaded (pg_hba.conf changed)", service="postgresql",
                        running=True, reloaded=True)  # fmt: skip
    db_role(name=f"Ensure the role {layout.DB_ROLE} (scram-sha-256, FACTORY_DB_PASSWORD) and its database "
            f"{layout.DB_NAME}", password=checked.secrets["FACTORY_DB_PASSWORD"])  # fmt: skip
    firewall(checked, text)


@deploy("The relay to the gate's PostgreSQL")
def worker_relay(checked: hostdata.Checked) -> None:
    apt.packages(name="Ensure socat and nftables", packages=["socat", "nftables"],
                 update=True, cache_time=APT_CACHE_S, no_recommends=True)  # fmt: skip
    server.user(  # noqa: S604 - `shell` is the user's login shell, not a subprocess flag
        name=f"Ensure the system user {layout.RELAY_USER} (the relay: the only user here that reaches PostgreSQL)",
        user=layout.RELAY_USER,
        system=True,
        home="/nonexistent",
        create_home=False,
        shell="/usr/sbin/nologin",
    )
    text = templating.render_fleet(checked)
    unit = _put(f"Ensure the relay's unit {layout.RELAY_UNIT}", text["factory-db-relay.service.j2"],
                layout.RELAY_UNIT_FILE, "644")  # fmt: skip
    firewall(checked, text)
    if changed([unit]):
        systemd.daemon_reload(name="Ensure systemd read the relay's unit")
    systemd.service(name=f"Ensure {layout.RELAY_UNIT} is enabled and running", service=layout.RELAY_UNIT,
                    running=True, enabled=True, restarted=changed([unit]))  # fmt: skip


def firewall(checked: hostdata.Checked, text: dict[str, str]) -> None:
    """Our own nftables table (`table inet factory`), loaded by its unit at boot and whenever it changes."""
    _directory("/etc/factory", "755", user="root", group="root")
    rules = _put(f"Ensure the nftables rules {layout.NFT_FILE} (who may open TCP to PostgreSQL's port)",
                 text["nftables.nft.j2"], layout.NFT_FILE, "644")  # fmt: skip
    unit = _put(f"Ensure the nftables unit {layout.NFT_UNIT}", text["factory-nftables.service.j2"],
                layout.NFT_UNIT_FILE, "644")  # fmt: skip
    if changed([unit]):
        systemd.daemon_reload(name="Ensure systemd read the nftables unit")
    systemd.service(name=f"Ensure {layout.NFT_UNIT} is enabled and loaded", service=layout.NFT_UNIT,
                    running=True, enabled=True, restarted=changed([rules, unit]))  # fmt: skip


# PostgreSQL from the distribution's own archive, by release (Debian's `postgresql` package).
POSTGRES_VERSIONS = {("Debian", 12): "15", ("Debian", 13): "17", ("Ubuntu", 22): "14", ("Ubuntu", 24): "16"}


def postgres_version(distro: dict[str, Any]) -> str:
    found = POSTGRES_VERSIONS.get((str(distro.get("name")), distro.get("major")))  # type: ignore[arg-type]
    if found is None:
        raise DeployError(f"{host.name}: a gate needs Debian 12/13 or Ubuntu 22.04/24.04 (got {distro.get('name')} "
                          f"{distro.get('major')}): its PostgreSQL comes from the distribution")  # fmt: skip
    return found


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

    if checked.role != "all" and not has_systemd:
        raise DeployError(f"{host.name}: a {checked.role} needs systemd (PostgreSQL, the relay, the nftables unit)")

    system_packages()
    node_tools(checked=checked)
    factory_user()
    if checked.role == "gate":
        gate_database(checked=checked, version=postgres_version(host.get_fact(LinuxDistribution)))
    elif checked.role == "worker":
        worker_relay(checked=checked)
    # The shared state in PostgreSQL ([state] url) needs psycopg in the runtime's venv.
    installed = runtime(wheel=wheel, extras=("postgres",) if checked.settings.state.url else ())
    repository(checked=checked)
    skills()
    # pyinfra types a @deploy's result as one OperationMeta; this one returns several.
    ops = cast(dict[str, OperationMeta], configuration(checked=checked, has_systemd=has_systemd))
    restart_after = [installed, ops["config"], ops["secrets"], ops["run"], ops["ecosystem"]]
    processes(checked=checked, has_systemd=has_systemd, restart_after=restart_after)


main()
