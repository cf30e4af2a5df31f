"""The lab's pieces agree: Molecule creates exactly the hosts the lab inventory names."""

from __future__ import annotations

import re

import yaml

from tomwerk import ROOT
from tomwerk.inventory import Inventory

# As Molecule reads it with no variable set: ${NAME:-default} is the default.
MOLECULE = yaml.safe_load(
    re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", (ROOT / "molecule" / "lab" / "molecule.yml").read_text())
)
LAB = Inventory(ROOT / "inventories" / "lab")
RELEASES = ("bookworm", "trixie")
# Each lab host's Debian release, by the tag of its image.
RELEASE_OF = {p["name"]: p["image"].rsplit(":", 1)[1] for p in MOLECULE["platforms"]}


def test_molecule_platforms_are_the_inventory_hosts():
    platforms = {p["name"]: p for p in MOLECULE["platforms"]}
    assert set(platforms) == set(LAB.hosts())
    for name, platform in platforms.items():
        groups = set(LAB.raw_vars(name)["group_names"])
        assert set(platform["groups"]) <= groups, name
        assert f"--network-alias={name}.{LAB.var(name, 'tomwerk_domain')}" in platform["extra_opts"]
        assert platform["image"] in {f"localhost/tomwerk-debian-systemd:{r}" for r in RELEASES}
        assert platform["network"] == "tomwerk-lab"
        assert platform["ip"] == LAB.var(name, "tomwerk_address")


def test_lab_mixes_both_releases_where_they_meet():
    assert set(RELEASE_OF.values()) == set(RELEASES)
    # RELP from 12 to a 13 log server, a 13 web host, restic across releases.
    assert RELEASE_OF["log1"] == "trixie"
    assert RELEASE_OF["web1"] == "trixie"
    targets = {RELEASE_OF[h] for h in LAB.hosts("backup_targets")}
    assert targets == set(RELEASES)
    # DNSSEC: the signer's checks ask the first resolver, on the other release.
    signer, resolver = LAB.hosts("dns")[0], LAB.hosts("dns_resolvers")[0]
    assert (RELEASE_OF[signer], RELEASE_OF[resolver]) == ("trixie", "bookworm")


def test_new_servers_share_one_release_switch():
    """`make upgrade-test` starts every new server on Debian 12 through one variable."""
    text = (ROOT / "molecule" / "lab" / "molecule.yml").read_text()
    switched = re.findall(r"image: localhost/tomwerk-debian-systemd:\$\{TOMWERK_LAB_NEW_RELEASE:-trixie\}", text)
    assert len(switched) == sum(r == "trixie" for r in RELEASE_OF.values())


def test_every_role_runs_on_debian_13_and_the_roles_of_every_server_on_both():
    everywhere = set(LAB.hosts())
    for meta in sorted((ROOT / "roles").glob("*/meta/main.yml")):
        role = meta.parent.parent.name
        releases = {RELEASE_OF[h] for h in LAB.hosts_with_role(role)}
        if role != "tomwerk_host":  # included by other roles, not named in a play
            assert "trixie" in releases, role
        if set(LAB.hosts_with_role(role)) == everywhere:
            assert releases == set(RELEASES), role


def test_lab_has_the_hosts_later_toms_need():
    for group, count in {
        "web": 1,
        "mail": 1,
        "meet": 1,
        "log_servers": 1,
        "monitoring": 1,
        "backup_targets": 3,
    }.items():
        assert len(LAB.hosts(group)) >= count, group


def test_backup_targets_are_in_three_cities():
    cities = {LAB.var(h, "backup_target_city") for h in LAB.hosts("backup_targets")}
    assert len(cities) >= 3


def test_admin_network_is_the_lab_subnet():
    script = (ROOT / "lab" / "network.sh").read_text()
    subnet = LAB.var("web1", "tomwerk_admin_networks")[0]
    assert f'SUBNET="${{TOMWERK_LAB_SUBNET:-{subnet}}}"' in script


def test_every_lab_host_uses_the_nsenter_connection_even_under_molecule():
    # Molecule's inventory sets ansible_connection: podman per host; only
    # inventory host_vars outrank that, so the setting must live there.
    for name in LAB.hosts():
        host_vars = ROOT / "inventories" / "lab" / "host_vars" / f"{name}.yml"
        assert host_vars.is_file(), f"{host_vars} is missing"
        assert yaml.safe_load(host_vars.read_text()).get("ansible_connection") == "podman_nsenter", name


def test_meta_claims_trixie_exactly_where_the_lab_runs_a_role_on_it():
    """A role's meta/main.yml lists Debian 13 only once the lab converges and checks it on a 13 host."""
    on_trixie = {h for h, r in RELEASE_OF.items() if r == "trixie"}
    for meta in sorted((ROOT / "roles").glob("*/meta/main.yml")):
        role = meta.parent.parent.name
        versions = yaml.safe_load(meta.read_text())["galaxy_info"]["platforms"][0]["versions"]
        assert "bookworm" in versions, role
        runs_on_trixie = role == "tomwerk_host" or bool(set(LAB.hosts_with_role(role)) & on_trixie)
        assert ("trixie" in versions) == runs_on_trixie, role
