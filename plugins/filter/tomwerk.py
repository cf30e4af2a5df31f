"""Filters the tomwerk roles use to check their input before any change.

Types alone cannot say "this string is a CIDR network" or "this RSA key is
long enough"; these filters let an `assert` say it, on the controller, with
only the Python standard library.
"""

import base64
import binascii
import ipaddress
import os
import struct

import yaml
from ansible.errors import AnsibleFilterError


def _read_ssh_string(blob, offset):
    (length,) = struct.unpack(">I", blob[offset : offset + 4])
    start = offset + 4
    return blob[start : start + length], start + length


def ssh_pubkey_info(line):
    """Return {'type', 'bits', 'valid'} for an OpenSSH public key line.

    'bits' is the RSA modulus length, 256 for Ed25519, 0 when unknown.
    A key whose base64 body does not decode, or whose inner type does not
    match the outer one, is reported with valid=False.
    """
    parts = str(line).split()
    info = {"type": parts[0] if parts else "", "bits": 0, "valid": False}
    if len(parts) < 2:
        return info
    try:
        blob = base64.b64decode(parts[1], validate=True)
        inner_type, offset = _read_ssh_string(blob, 0)
        if inner_type.decode("ascii") != info["type"]:
            return info
        if info["type"] == "ssh-rsa":
            _exponent, offset = _read_ssh_string(blob, offset)
            modulus, _ = _read_ssh_string(blob, offset)
            info["bits"] = int.from_bytes(modulus, "big").bit_length()
        elif "ed25519" in info["type"]:
            info["bits"] = 256
        info["valid"] = True
    except (binascii.Error, struct.error, UnicodeDecodeError, ValueError):
        return info
    return info


def is_network(value):
    """True when value is an IPv4/IPv6 address or network in CIDR form."""
    try:
        ipaddress.ip_network(str(value), strict=False)
    except ValueError:
        return False
    return True


def ip_in_networks(address, networks):
    """True when address lies in one of the networks (invalid entries never match)."""
    try:
        ip = ipaddress.ip_address(str(address))
    except ValueError:
        return False
    for net in networks or []:
        try:
            if ip in ipaddress.ip_network(str(net), strict=False):
                return True
        except ValueError:
            continue
    return False


def ip_family(value):
    """'ip' for IPv4 and 'ip6' for IPv6 networks: the nftables address family keyword."""
    return "ip6" if ipaddress.ip_network(str(value), strict=False).version == 6 else "ip"


def is_port(value):
    """True for an integer (or all-digit string) port 1..65535."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return 1 <= value <= 65535
    text = str(value)
    return text.isdigit() and 1 <= int(text) <= 65535


def ip_range(value):
    """'first-last' addresses of an IP network (coturn's denied-peer-ip form)."""
    net = ipaddress.ip_network(str(value), strict=False)
    return f"{net[0]}-{net[-1]}"


def domain_of(host, own_domains):
    """The entry of own_domains that host (a DNS name) belongs to, or '' when none."""
    name = str(host).rstrip(".").lower()
    for domain in own_domains or []:
        dom = str(domain).rstrip(".").lower()
        if name == dom or name.endswith("." + dom):
            return dom
    return ""


def backup_locations(targets, hostvars, port_var="backup_target_port", default_port=2222):
    """The backup targets as the backup role uses them: one dict per target host.

    Reads each target's backup_target_location, backup_target_city and
    tomwerk_address from hostvars; a missing value stays empty so the role's
    assert can name it.
    """
    result = []
    for name in targets or []:
        hv = hostvars[name]
        result.append(
            {
                "host": str(name),
                "location": str(hv.get("backup_target_location", "")),
                "city": str(hv.get("backup_target_city", "")),
                "address": str(hv.get("tomwerk_address", "")),
                "port": int(hv.get(port_var, default_port)),
            }
        )
    return result


def backup_repository(location, account, config_dir):
    """One location of the backup runner's config: where and how restic reaches it."""
    ssh = (
        f"ssh -p {int(location['port'])} -i {config_dir}/id_ed25519"
        f" -o UserKnownHostsFile={config_dir}/known_hosts -o StrictHostKeyChecking=yes"
        f" -o BatchMode=yes -o ConnectTimeout=15 {account}@{location['address']} -s sftp"
    )
    return {
        "location": location["location"],
        "city": location["city"],
        "repository": f"sftp:{account}@{location['address']}:/repo",
        "sftp_command": ssh,
    }


def postfix_list_with(current, entry):
    """A postfix list setting (commas or blanks) with entry appended when absent.

    Keeps the order of what is there: Ansible's union goes through a set, whose
    order changes with each run's string hashing, so the same milters came out
    in a different order and the role "changed" a setting it had already set.
    """
    present = str(current or "").replace(",", " ").split()
    if str(entry) not in present:
        present.append(str(entry))
    return " ".join(present)


def pick(mapping, keys):
    """Only the given keys of a dict (for state files that must not carry more)."""
    return {k: mapping[k] for k in keys if k in mapping}


def with_runbook_urls(rules, base_url):
    """A Prometheus rule file with `runbook_url` set on every alert: base_url#<alert in lower case>.

    The rule files stay as promtool tests them; the URL, which differs per
    installation, is added when the monitoring role installs them.
    """
    groups = []
    for group in rules["groups"]:
        new_rules = []
        for rule in group["rules"]:
            if "alert" in rule:
                annotations = dict(rule.get("annotations") or {})
                annotations["runbook_url"] = f"{base_url}#{rule['alert'].lower()}"
                rule = {**rule, "annotations": annotations}
            new_rules.append(rule)
        groups.append({**group, "rules": new_rules})
    return {**rules, "groups": groups}


def release_vars(role_dir, major):
    """A role's settings for one Debian release: `<role>_release` in its vars/Debian-<major>.yml.

    The single way release-aware roles read their release file, lazily (the
    facts are known by then) and below the inventory in precedence, unlike
    include_vars. A release the role has no file for is refused by name.
    """
    role_dir = os.path.normpath(str(role_dir))
    role = os.path.basename(role_dir)
    path = os.path.join(role_dir, "vars", f"Debian-{major}.yml")
    if not os.path.isfile(path):
        known = sorted(
            f[len("Debian-") : -len(".yml")]
            for f in os.listdir(os.path.join(role_dir, "vars"))
            if f.startswith("Debian-") and f.endswith(".yml")
        )
        raise AnsibleFilterError(
            f"role {role} has no settings for Debian {major} (no {path}); it supports Debian {', '.join(known)}"
        )
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)[f"{role}_release"]


class FilterModule:
    def filters(self):
        return {
            "ssh_pubkey_info": ssh_pubkey_info,
            "is_network": is_network,
            "ip_in_networks": ip_in_networks,
            "ip_family": ip_family,
            "is_port": is_port,
            "domain_of": domain_of,
            "ip_range": ip_range,
            "backup_locations": backup_locations,
            "backup_repository": backup_repository,
            "pick": pick,
            "postfix_list_with": postfix_list_with,
            "release_vars": release_vars,
            "with_runbook_urls": with_runbook_urls,
        }
