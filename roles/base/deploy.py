"""pyinfra twin of roles/base (tasks/main.yml): same defaults (roles/_lib/vars.py), same templates."""

from __future__ import annotations

from pathlib import Path

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.server import Command
from pyinfra.operations import apt, files, server, systemd
from roles._lib import ops
from roles._lib.vars import role_vars

ROLE = "base"


def in_container() -> bool:
    """What Ansible says (``systemd-nspawn`` in ``ansible_virtualization_tech_guest``), from systemd itself."""
    kind = host.get_fact(Command, "systemd-detect-virt --container || true") or ""
    return kind.strip() == "systemd-nspawn"


@deploy("Catalyst base")
def apply() -> None:
    v = role_vars(ROLE, host.data, overrides={"base_in_container": in_container()})

    if v["base_apt_proxy"]:
        ops.template(ROLE, "apt-proxy.conf.j2", "/etc/apt/apt.conf.d/90catalyst-proxy", v, mode="644",
                     name="Point apt at the proxy the inventory names (test droplets only)")  # fmt: skip
    else:
        files.file(name="Remove the apt proxy when the inventory names none",
                   path="/etc/apt/apt.conf.d/90catalyst-proxy", present=False)  # fmt: skip

    ca_ops = [
        files.put(
            name=f"Trust the extra CA certificate {Path(ca).name} (test droplets only)",
            src=str(ca),
            dest=f"/usr/local/share/ca-certificates/{Path(ca).name}",
            user="root",
            group="root",
            mode="644",
        )
        for ca in v["base_extra_ca_certs"]
    ]
    if ca_ops:
        server.shell(name="Update the CA certificate store", commands=["update-ca-certificates"],
                     _if=[lambda: any(op.did_change() for op in ca_ops)])  # fmt: skip

    apt.packages(
        name="Install the base packages", packages=list(v["base_packages"]), update=True,
        cache_time=int(v["base_apt_cache_valid_time"]), no_recommends=True,
    )  # fmt: skip

    ops.template(ROLE, "timezone.j2", "/etc/timezone", v, mode="644", name="Set the time zone file")
    files.link(name="Link /etc/localtime to the time zone", path="/etc/localtime",
               target=f"/usr/share/zoneinfo/{v['base_timezone']}")  # fmt: skip

    server.group(name="Create the service group", group=v["base_service_group"], system=True)
    server.user(
        name="Create the service user (no login shell, no sudo)", user=v["base_service_user"],
        group=v["base_service_group"], system=True, shell="/usr/sbin/nologin", home=v["base_state_dir"],
        ensure_home=False, create_home=False, comment="Catalyst trading agent",
    )  # fmt: skip
    files.file(name="Make sure the service user has no sudo rule",
               path=f"/etc/sudoers.d/{v['base_service_user']}", present=False)  # fmt: skip
    files.directory(name="Create the configuration directory", path=v["base_config_dir"], user="root",
                    group=v["base_service_group"], mode="750")  # fmt: skip
    for d in (v["base_state_dir"], v["base_report_dir"], v["base_log_dir"]):
        files.directory(name=f"Create {d}", path=d, user=v["base_service_user"], group=v["base_service_group"],
                        mode="750")  # fmt: skip

    if ops.validated_template(ROLE, "sshd_config.j2", "/etc/ssh/sshd_config", v, mode="644",
                              validate="/usr/sbin/sshd -t -f %s",
                              op_name="Write the hardened sshd configuration (validated with sshd -t)"):  # fmt: skip
        systemd.service(name="Reload sshd", service="ssh", reloaded=True)
    systemd.service(name="Keep sshd enabled and running", service="ssh", running=True, enabled=True)

    sysctl = ops.template(ROLE, "sysctl.conf.j2", v["base_sysctl_file"], v, mode="644",
                          name="Write the sysctl hardening")  # fmt: skip
    server.shell(name="Apply the sysctl hardening", commands=[f"sysctl -q -p {v['base_sysctl_file']}"],
                 _if=sysctl.did_change)  # fmt: skip

    if ops.validated_template(ROLE, "nftables.conf.j2", "/etc/nftables.conf", v, mode="755",
                              validate="/usr/sbin/nft -c -f %s",
                              op_name="Write the firewall rules (checked with nft -c)"):  # fmt: skip
        systemd.service(name="Reload the firewall", service="nftables", running=True, reloaded=True)
    systemd.service(name="Keep the firewall enabled and loaded", service="nftables", running=True, enabled=True)

    jail = ops.template(ROLE, "fail2ban-jail.local.j2", "/etc/fail2ban/jail.d/catalyst.local", v, mode="644",
                        name="Configure the fail2ban sshd jail")  # fmt: skip
    jail_filter = ops.template(
        ROLE,
        "fail2ban-sshd-filter.local.j2",
        "/etc/fail2ban/filter.d/sshd.local",
        v,
        mode="644",
        name="Point the fail2ban sshd filter at Debian's ssh.service journal",
    )
    systemd.service(name="Restart fail2ban", service="fail2ban", restarted=True,
                    _if=lambda: jail.did_change() or jail_filter.did_change())  # fmt: skip
    systemd.service(name="Keep fail2ban enabled and running", service="fail2ban", running=True, enabled=True)

    # In a container systemd-timesyncd's unit condition (ConditionVirtualization=!container) skips it: enable
    # it only, as the Ansible task does, so a second run changes nothing.
    systemd.service(name="Keep time synchronisation enabled", service="systemd-timesyncd", enabled=True,
                    running=None if v["base_in_container"] else True)  # fmt: skip

    ops.template(ROLE, "20auto-upgrades.j2", "/etc/apt/apt.conf.d/20auto-upgrades", v, mode="644",
                 name="Turn on daily unattended security upgrades")  # fmt: skip
    ops.template(ROLE, "52catalyst-unattended-upgrades.j2", "/etc/apt/apt.conf.d/52catalyst-unattended-upgrades",
                 v, mode="644", name="Restrict unattended upgrades to security updates")  # fmt: skip

    for key, value in v["base_login_defs"].items():
        # One pattern for both tools (Ansible's lineinfile regexp is the same): "KEY value", commented or not;
        # extended regex, so "#?" and "+" mean what they say (grep's basic regex left Debian's own line beside ours).
        files.line(name=f"Set {key} in /etc/login.defs", path="/etc/login.defs", line=rf"^#?\s*{key}\s+\S+\s*$",
                   replace=f"{key} {value}", extended_regex=True)  # fmt: skip
    for banner in ("/etc/issue", "/etc/issue.net"):
        ops.template(ROLE, "issue.j2", banner, v, mode="644", name=f"Write the login banner {banner}")
    files.directory(name="Create the modprobe configuration directory", path="/etc/modprobe.d", user="root",
                    group="root", mode="755")  # fmt: skip
    ops.template(ROLE, "modprobe-hardening.conf.j2", "/etc/modprobe.d/catalyst-hardening.conf", v, mode="644",
                 name="Keep unneeded kernel modules from loading")  # fmt: skip
    ops.template(ROLE, "limits-core.conf.j2", "/etc/security/limits.d/catalyst-core.conf", v, mode="644",
                 name="Disable core dumps")  # fmt: skip
    jail_defaults = ops.template(ROLE, "fail2ban-jail-defaults.local.j2", "/etc/fail2ban/jail.local", v, mode="644",
                                 name="Keep a local fail2ban jail file")  # fmt: skip
    systemd.service(name="Restart fail2ban for its local jail file", service="fail2ban", restarted=True,
                    _if=jail_defaults.did_change)  # fmt: skip
    ops.template(ROLE, "sysstat.default.j2", "/etc/default/sysstat", v, mode="644",
                 name="Turn on system activity collection")  # fmt: skip

