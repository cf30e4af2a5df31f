"""The example production inventory (inventories/production): its vault opens with the test-only
password, `tomwerk check-inventory` passes it, and refuses each broken variant naming the variable.

The variants are host-scoped (host_vars), so one check-inventory run covers all of them: each
role's input checks run for every host, and every assert runs even after one failed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tomwerk import ROOT, check_inventory

# Runs ansible-playbook: heavy (`make heavy`, part of `make test`).
pytestmark = pytest.mark.heavy

PRODUCTION = ROOT / "inventories" / "production"
# The example vault's password: for this test only. A real inventory's password is never in git.
VAULT_PASSWORD = Path(__file__).parent / "fixtures" / "example-vault-password"

# host, the variables that break it, the variable the refusal must name.
VARIANTS = [
    ("web1", {"ssh_access_admins": []}, "ssh_access_admins"),
    ("web1", {"web_tls_hsts_max_age": 3600}, "web_tls_hsts_max_age"),
    ("mail1", {"ssh_access_port": 70000}, "ssh_access_port"),
    ("mail1", {"mail_tls_mynetworks": ["0.0.0.0/0"]}, "mail_tls_mynetworks"),
    ("meet1", {"jitsi_turn_secret": "secret"}, "jitsi_turn_secret"),
    ("meet1", {"password_policy_allowed_hashes": ["yescrypt", "md5"]}, "password_policy_allowed_hashes"),
    ("log1", {"backup_paths": ["etc"]}, "backup_paths"),
    ("log1", {"log_server_attack_retention_days": 8}, "log_server_attack_retention_days"),
    ("monitor1", {"tomwerk_verify_ssh_private_key_file": "/nonexistent/key"}, "tomwerk_verify_ssh_private_key_file"),
    ("monitor1", {"internal_pki_ca_dir": "pki"}, "internal_pki_ca_dir"),
    ("backup-frankfurt", {"backup_target_city": ""}, "backup_target_city"),
    ("backup-nuremberg", {"retention_logs_days": 31}, "retention_logs_days"),
    ("backup-berlin", {"tomwerk_host_install_dir": "lib/tomwerk"}, "tomwerk_host_install_dir"),
    # Lock-out checks: they read the inventory's real connection (SSH), not check-inventory's.
    ("web1", {"ansible_user": "deploy"}, "ansible_user"),
    ("meet1", {"ansible_port": 2222}, "firewall_ssh_port"),
]


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory, monkeypatch_module):
    """What the admins keep outside git (TOMWERK_SECRETS_DIR): here a throwaway key for tomwerk-verify."""
    found = tmp_path_factory.mktemp("secrets")
    (found / "keys").mkdir()
    key = found / "keys" / "tomwerk-verify"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    monkeypatch_module.setenv("TOMWERK_SECRETS_DIR", str(found))
    return found


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_the_vault_opens_with_the_test_password_and_holds_every_servers_secret():
    vault = PRODUCTION / "group_vars" / "all" / "vault.yml"
    assert vault.read_text().startswith("$ANSIBLE_VAULT;1.1;AES256")
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-vault"), "view", "--vault-password-file", str(VAULT_PASSWORD),
         str(vault)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    secrets = yaml.safe_load(proc.stdout)
    clients = yaml.safe_load((PRODUCTION / "hosts.yml").read_text())["all"]["children"]
    servers = {h for group in ("web", "mail", "meet", "log_servers", "monitoring") for h in clients[group]["hosts"]}
    assert set(secrets["vault_backup_repository_passwords"]) == servers
    assert all(len(p) >= 32 for p in secrets["vault_backup_repository_passwords"].values())
    assert len(secrets["vault_jitsi_turn_secret"]) >= 32


def test_the_vault_password_is_not_committed_in_the_inventory():
    password = VAULT_PASSWORD.read_text().strip()
    for path in PRODUCTION.rglob("*"):
        if path.is_file():
            assert password not in path.read_text(encoding="utf-8"), path


def test_the_example_passes(secrets_dir):
    hosts, found = check_inventory.run(str(PRODUCTION), vault_password_file=str(VAULT_PASSWORD))
    assert hosts == 8
    assert found == []


def test_a_wrong_vault_password_is_an_error_not_a_pass(secrets_dir, tmp_path):
    wrong = tmp_path / "wrong"
    wrong.write_text("not the password\n")
    with pytest.raises(RuntimeError, match=r"[Dd]ecrypt"):
        check_inventory.run(str(PRODUCTION), vault_password_file=str(wrong))


@pytest.fixture(scope="module")
def broken(secrets_dir, tmp_path_factory) -> list[check_inventory.Problem]:
    copy = tmp_path_factory.mktemp("inventory") / "production"
    shutil.copytree(PRODUCTION, copy)
    (copy / "host_vars").mkdir()
    per_host: dict[str, dict] = {}
    for host, variables, _ in VARIANTS:
        per_host.setdefault(host, {}).update(variables)
    for host, variables in per_host.items():
        (copy / "host_vars" / f"{host}.yml").write_text(yaml.safe_dump(variables))
    _, found = check_inventory.run(str(copy), vault_password_file=str(VAULT_PASSWORD))
    return found


@pytest.mark.parametrize(("host", "variables", "name"), VARIANTS, ids=[f"{h}-{n}" for h, _, n in VARIANTS])
def test_a_broken_variable_is_refused_by_name(broken, host, variables, name):
    messages = [p.message for p in broken if p.host == host]
    assert any(name in m for m in messages), f"{host}: nothing names {name}: {messages}"


def test_a_copy_whose_vault_opens_with_the_example_password_is_refused(secrets_dir, tmp_path):
    copy = tmp_path / "production"
    shutil.copytree(PRODUCTION, copy)
    _, found = check_inventory.run(str(copy), vault_password_file=str(VAULT_PASSWORD))
    assert [p.task for p in found] == ["Vault password"]
    assert "group_vars/all/vault.yml" in found[0].message


def test_the_example_password_constant_is_the_fixtures():
    assert check_inventory.EXAMPLE_VAULT_PASSWORD.decode() == VAULT_PASSWORD.read_text().strip()


def test_enough_variants():
    assert len(VARIANTS) >= 10 and len({n for _, _, n in VARIANTS}) == len(VARIANTS)
