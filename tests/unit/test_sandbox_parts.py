"""The sandbox tool's pure parts: parsers, names, plans and messages (no root needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox import cgroups, cli, image, lifecycle, machine, mounts, net, privnet, procs, runner, ssh, state
from sandbox.errors import AddressInUse, NotRoot, SandboxError, ToolMissing


def test_netns_list_parses_with_and_without_ids() -> None:
    assert net.parse_netns_list("fsb-a (id: 0)\nother\n\n") == ["fsb-a", "other"]


def test_nft_tables_parse_family_and_name() -> None:
    text = "table ip factory_sandbox_a\ntable inet filter\n"
    assert net.parse_nft_tables(text) == [("ip", "factory_sandbox_a"), ("inet", "filter")]


def test_link_names_drop_the_peer_suffix() -> None:
    text = "1: lo: <LOOPBACK,UP> mtu 65536\n5: fsb-1a2b3c4d@if2: <BROADCAST> mtu 1500\n"
    assert net.parse_link_names(text) == ["lo", "fsb-1a2b3c4d"]


def test_ipv4_addrs_parse() -> None:
    text = "2: eth0    inet 192.0.2.2/24 brd 192.0.2.255 scope global eth0\\       valid_lft forever\n"
    assert net.parse_ipv4_addrs(text) == [("eth0", "192.0.2.2/24")]


@pytest.mark.parametrize(
    ("requested", "reserved", "addrs", "expected"),
    [
        (None, set(), [], 0),
        (None, {0, 1}, [], 2),
        (None, set(), [("eth1", "10.231.0.7/24")], 1),
        (None, set(), [("big", "10.231.0.1/23")], 2),  # a /23 covers 0 and 1
        (5, {0}, [("eth0", "192.0.2.2/24")], 5),
    ],
)
def test_choose_index_takes_the_first_free_subnet(
    requested: int | None, reserved: set[int], addrs: list[tuple[str, str]], expected: int
) -> None:
    assert net.choose_index(requested, reserved, addrs) == expected


@pytest.mark.parametrize(("reserved", "addrs"), [({3}, []), (set(), [("dummy0", "10.231.3.9/24")])])
def test_a_requested_subnet_in_use_is_a_clear_error(reserved: set[int], addrs: list[tuple[str, str]]) -> None:
    with pytest.raises(AddressInUse, match=r"10\.231\.3\.0/24 is already used"):
        net.choose_index(3, reserved, addrs)


def test_plan_names_fit_linux_limits_and_come_from_the_name() -> None:
    plan = net.NetPlan("a-very-long-sandbox-name-here", 7)
    assert len(plan.host_if) <= 15
    assert plan.netns == "fsb-a-very-long-sandbox-name-here"
    assert (plan.host_addr, plan.guest_addr, plan.subnet) == ("10.231.7.1", "10.231.7.2", "10.231.7.0/24")
    assert plan.table == "factory_sandbox_a_very_long_sandbox_name_here"
    assert net.NetPlan("x", 0).host_if != net.NetPlan("y", 0).host_if


def test_nft_script_masquerades_out_and_only_replies_come_back_in() -> None:
    plan = net.NetPlan("box", 4)
    script = net.nft_script(plan)
    assert f"table ip {plan.table}" in script
    assert f'ip saddr 10.231.4.0/24 oifname != "{plan.host_if}" masquerade' in script
    assert f'oifname "{plan.host_if}" ct state established,related accept' in script
    assert f'oifname "{plan.host_if}" drop' in script
    # The private networks' range never leaves this machine through a sandbox's NAT.
    assert f'iifname "{plan.host_if}" ip daddr 10.232.0.0/16 reject' in script
    assert script.index("10.232.0.0/16 reject") < script.index(f'iifname "{plan.host_if}" accept')


@pytest.mark.parametrize("name", ["sandbox", "test123", "a", "ci-run-7"])
def test_good_names(name: str) -> None:
    assert state.check_name(name) == name


@pytest.mark.parametrize("name", ["", "Bad", "1abc", "a_b", "trailing-", "x" * 32, "a b", "../etc"])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(SandboxError, match="bad sandbox name"):
        state.check_name(name)


def test_state_survives_a_round_trip_and_ignores_unknown_keys(tmp_path: Path) -> None:
    layout = state.Layout(tmp_path, "box")
    st = state.State("box", "nspawn", 3, "/img", "/key", "2026-01-01T00:00:00Z", launcher_pid=42)
    state.save(layout, st)
    assert state.load(layout) == st
    layout.state_file.write_text(layout.state_file.read_text().replace('"boots"', '"future": 1, "boots"'))
    assert state.load(layout) == st
    assert state.names(tmp_path) == ["box"]
    assert state.reserved_indexes(tmp_path) == {3}


def test_recipe_digest_changes_with_packages_files_and_ca_certs(tmp_path: Path) -> None:
    base = image.default_recipe(ca_dir=tmp_path)
    assert base.digest() == image.default_recipe(ca_dir=tmp_path).digest()
    assert base.image_name() == f"debian-bookworm-{base.digest()}.tar.zst"
    more = image.Recipe(base.suite, (*base.packages, "git"), base.files, base.ca_certs)
    assert more.digest() != base.digest()
    (tmp_path / "extra.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    assert image.default_recipe(ca_dir=tmp_path).digest() != base.digest()


def test_image_files_carry_the_vps_basics() -> None:
    files = image.guest_files("box", "http://mirror/debian", "http://mirror/security")
    sources = files["/etc/apt/sources.list.d/debian.sources"][0]
    assert "Suites: bookworm bookworm-updates" in sources and "bookworm-security" in sources
    assert "127.0.1.1\tbox" in files["/etc/hosts"][0]
    assert files["/etc/sudoers.d/factory-sandbox-ca"] == ('Defaults env_keep += "NODE_EXTRA_CA_CERTS"\n', 0o440)
    assert "NODE_EXTRA_CA_CERTS=" in files["/etc/environment"][0]
    assert not any("policy-rc.d" in path for path in files)


def test_guest_resolv_conf_drops_loopback_nameservers() -> None:
    text = "search example\nnameserver 127.0.0.53\nnameserver 10.255.255.53\nnameserver ::1\n"
    assert machine.resolv_conf(text) == "search example\nnameserver 10.255.255.53\n"


def test_ssh_config_is_usable_by_pyinfra_and_testinfra(tmp_path: Path) -> None:
    text = ssh.config_text("box", "10.231.0.2", tmp_path / "id")
    assert text.startswith("Host box\n")
    for line in (
        "HostName 10.231.0.2",
        "User root",
        f"IdentityFile {tmp_path / 'id'}",
        "StrictHostKeyChecking no",
        "UserKnownHostsFile /dev/null",
        "Port 22",
    ):
        assert f"    {line}\n" in text


def test_nspawn_runs_with_systemd_in_the_sandbox_namespace(tmp_path: Path) -> None:
    layout = state.Layout(tmp_path, "box")
    argv = machine.nspawn_argv(layout, net.NetPlan("box", 0))
    assert argv[:2] == ["systemd-nspawn", "--boot"]
    assert {"--register=no", "--keep-unit", "--network-namespace-path=/run/netns/fsb-box"} <= set(argv)
    chroot = machine.chroot_argv(layout, net.NetPlan("box", 0))
    assert chroot[:2] == ["nsenter", "--net=/run/netns/fsb-box"] and str(layout.root) in chroot


def test_proc_stat_parse_survives_odd_command_names() -> None:
    text = "123 (we ird) name)) S 45 123 123 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 98765 1000 10"
    assert procs.parse_stat(text) == (45, 98765)


def test_mountinfo_parse_unescapes_spaces() -> None:
    text = "36 35 98:0 / /mnt/with\\040space rw - ext3 /dev/root rw\n37 35 0:5 / /run rw - tmpfs t rw\n"
    assert mounts.parse_mountinfo(text) == ["/mnt/with space", "/run"]


def test_cgroup_hierarchies_are_cgroup2_and_name_systemd() -> None:
    text = (
        "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n"
        "40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n"
        "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
    )
    assert cgroups.parse_hierarchies(text) == [Path("/sys/fs/cgroup/systemd"), Path("/sys/fs/cgroup/unified")]


def test_missing_tool_names_its_apt_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "which", lambda tool: None)
    with pytest.raises(ToolMissing, match=r"^systemd-nspawn is not installed: apt-get install systemd-container$"):
        runner.require_tools(["systemd-nspawn"])
    with pytest.raises(ToolMissing, match="apt-get install nftables"):
        runner.require_tools(["nft"])


def test_not_root_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(NotRoot):
        runner.require_root()
    assert cli.main(["up", "--name", "box"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["Error: the sandbox needs root (mounts, namespaces, nftables): run it with sudo"]


def test_ssh_to_a_sandbox_that_is_not_up_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FACTORY_SANDBOX_STATE", str(tmp_path))
    assert cli.main(["ssh", "--name", "box", "--", "true"]) == 1
    assert capsys.readouterr().err == "Error: sandbox box is not up: `up --name box` first\n"


def test_status_of_an_absent_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FACTORY_SANDBOX_STATE", str(tmp_path))
    assert cli.main(["status", "--name", "box", "--json"]) == 0
    assert capsys.readouterr().out.strip() == '{\n  "name": "box",\n  "state": "absent"\n}'


# Private networks (privnet.py).


def member(network: str, name: str, index: int, host: int) -> privnet.Membership:
    return privnet.Membership(network, name, index, host)


def test_membership_names_and_address_come_from_network_member_index_and_host() -> None:
    m = member("fleet", "a-very-long-sandbox-name-here", 3, 7)
    assert (m.netns, m.subnet, m.address) == ("fsbnet-fleet", "10.232.3.0/24", "10.232.3.7")
    assert m.member_netns == "fsb-a-very-long-sandbox-name-here"
    assert len(m.port) <= 15 and m.port == net.NetPlan(m.member, 0).host_if
    # A network's namespace never looks like a sandbox's (whose names are fsb-NAME).
    assert not m.netns.startswith(net.NETNS_PREFIX)


@pytest.mark.parametrize(
    ("network", "requested", "others", "addrs", "expected"),
    [
        ("fleet", None, [], [], 0),
        ("fleet", None, [member("other", "x", 0, 2)], [], 1),
        ("fleet", None, [member("fleet", "x", 4, 2)], [], 4),  # joins its network's subnet
        ("fleet", 4, [member("fleet", "x", 4, 2)], [], 4),
        ("fleet", None, [], [("eth9", "10.232.0.1/24"), ("eth0", "10.231.1.1/24")], 1),
        ("fleet", 9, [member("other", "x", 0, 2)], [], 9),
    ],
)
def test_a_network_gets_its_members_subnet_or_the_first_free(
    network: str,
    requested: int | None,
    others: list[privnet.Membership],
    addrs: list[tuple[str, str]],
    expected: int,
) -> None:
    assert privnet.choose_index(network, requested, others, addrs) == expected


@pytest.mark.parametrize(
    ("requested", "others", "addrs", "message"),
    [
        (0, [member("other", "x", 0, 2)], [], r"10\.232\.0\.0/24 is already used by network other"),
        (5, [], [("dummy0", "10.232.5.9/24")], r"10\.232\.5\.0/24 is already used by interface dummy0"),
        (3, [member("fleet", "x", 4, 2)], [], r"network fleet is already 10\.232\.4\.0/24"),
        (None, [member("fleet", "x", 4, 2)], [("dummy0", "10.232.4.1/24")], r"fleet's subnet .* now used by dummy0"),
        (300, [], [], "--network-index must be between 0 and 254"),
    ],
)
def test_a_network_subnet_clash_is_a_clear_error(
    requested: int | None, others: list[privnet.Membership], addrs: list[tuple[str, str]], message: str
) -> None:
    with pytest.raises(SandboxError, match=message):
        privnet.choose_index("fleet", requested, others, addrs)


@pytest.mark.parametrize(
    ("sandbox_index", "taken", "expected"),
    [(0, set(), 2), (5, {2, 3}, 7), (1, {3}, 2), (252, set(), 254), (253, set(), 2), (254, {2, 3}, 4)],
)
def test_a_member_is_its_sandbox_index_plus_two_or_the_first_free(
    sandbox_index: int, taken: set[int], expected: int
) -> None:
    assert privnet.choose_host(sandbox_index, taken) == expected


def test_plan_counts_only_the_same_networks_addresses() -> None:
    others = [member("fleet", "gate", 2, 3), member("other", "w", 0, 4)]
    # .4 is taken on `other`, not on `fleet`.
    assert privnet.plan("w2", 2, "fleet", None, others, []) == member("fleet", "w2", 2, 4)
    assert privnet.plan("w3", 2, "other", None, others, []) == member("other", "w3", 0, 2)
    with pytest.raises(AddressInUse, match="no address left"):
        privnet.choose_host(0, set(range(2, 255)))


def test_the_first_member_creates_the_network_and_a_later_one_only_its_port() -> None:
    m = member("fleet", "gate", 0, 2)
    first = privnet.join_steps(m, netns_exists=False, links=[])
    assert first == [
        ["ip", "netns", "add", "fsbnet-fleet"],
        ["ip", "-n", "fsbnet-fleet", "link", "add", "br0", "type", "bridge"],
        ["ip", "-n", "fsbnet-fleet", "link", "set", "br0", "up"],
        [
            "ip",
            "-n",
            "fsbnet-fleet",
            "link",
            "add",
            m.port,
            "type",
            "veth",
            "peer",
            "name",
            "eth1",
            "netns",
            "fsb-gate",
        ],
        ["ip", "-n", "fsbnet-fleet", "link", "set", m.port, "master", "br0"],
        ["ip", "-n", "fsbnet-fleet", "link", "set", m.port, "up"],
        ["ip", "-n", "fsb-gate", "addr", "add", "10.232.0.2/24", "dev", "eth1"],
        ["ip", "-n", "fsb-gate", "link", "set", "eth1", "up"],
    ]
    assert privnet.join_steps(m, netns_exists=True, links=["lo", "br0", "fsb-other"]) == first[3:]
    assert privnet.join_steps(m, netns_exists=True, links=["lo", "br0", m.port]) == []


def test_ports_are_the_network_links_but_loopback_and_bridge() -> None:
    links = net.parse_link_names("1: lo: <LOOPBACK>\n2: br0: <UP>\n3: fsb-1a2b3c4d@if3: <UP>\n")
    assert privnet.ports(links) == ["fsb-1a2b3c4d"]
    assert privnet.ports(["lo", "br0"]) == []


def test_bad_network_name_is_refused() -> None:
    assert state.check_name("fleet", "network") == "fleet"
    with pytest.raises(SandboxError, match=r"^bad network name 'Bad_Net': use 1-31"):
        state.check_name("Bad_Net", "network")


def test_bad_network_name_is_one_line_from_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FACTORY_SANDBOX_STATE", str(tmp_path))
    monkeypatch.setattr(runner, "require_root", lambda: None)
    assert cli.main(["up", "--name", "box", "--network", "Bad_Net"]) == 1
    assert capsys.readouterr().err.startswith("Error: bad network name 'Bad_Net'")
    assert list(tmp_path.iterdir()) == []  # refused before anything was made


def test_state_remembers_the_membership(tmp_path: Path) -> None:
    st = state.State(
        "gate", "nspawn", 1, "/img", "/key", "2026-01-01T00:00:00Z", network="fleet", network_index=4, private_host=3
    )
    state.save(state.Layout(tmp_path, "gate"), st)
    state.save(state.Layout(tmp_path, "lone"), state.State("lone", "nspawn", 2, "/img", "/key", "2026-01-01T00:00:00Z"))
    assert state.load(state.Layout(tmp_path, "gate")) == st
    assert st.membership == member("fleet", "gate", 4, 3)
    assert state.memberships(tmp_path) == [member("fleet", "gate", 4, 3)]


def test_status_shows_network_and_private_address_or_null(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FACTORY_SANDBOX_STATE", str(tmp_path))
    created = "2026-01-01T00:00:00Z"
    state.save(
        state.Layout(tmp_path, "gate"),
        state.State("gate", "nspawn", 1, "/i", "/k", created, network="fleet", network_index=4, private_host=3),
    )
    state.save(state.Layout(tmp_path, "lone"), state.State("lone", "nspawn", 2, "/i", "/k", created))
    gate, lone = lifecycle.status("gate"), lifecycle.status("lone")
    assert (gate["state"], gate["network"], gate["private_address"]) == ("stopped", "fleet", "10.232.4.3")
    assert (lone["network"], lone["private_address"]) == (None, None)
    assert cli.main(["status", "--name", "gate"]) == 0
    out = capsys.readouterr().out
    assert "  network:          fleet\n" in out and "  private_address:  10.232.4.3\n" in out
