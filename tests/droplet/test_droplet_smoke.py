"""Smoke test of the local test droplet: it boots, SSH works, it is isolated, apt works through the proxy, and a
second droplet can run beside it and leaves nothing behind."""

from __future__ import annotations

import ipaddress
import os
import re
import shlex
import subprocess

import pytest
from tests.droplet.droplet import Droplet, host_network_snapshot, leftovers

pytestmark = [pytest.mark.droplet, pytest.mark.timeout(900)]  # the first session also builds the image


def test_ssh_logs_in_as_root_with_the_run_key(droplet: Droplet) -> None:
    out = droplet.ssh("id -u; hostname").stdout.split()
    assert out == ["0", droplet.name]
    # the same through the generated ssh_config, as the CLI and testinfra use it
    res = subprocess.run([*droplet.ssh_args(), "true"], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert oct(droplet.key.stat().st_mode & 0o777) == "0o600"


def test_systemd_is_up(droplet: Droplet) -> None:
    state = droplet.ssh("systemctl is-system-running", check=False).stdout.strip()
    assert state in ("running", "degraded"), droplet.ssh("systemctl --failed --no-legend", check=False).stdout
    assert droplet.ssh("systemctl is-active ssh").stdout.strip() == "active"


def test_droplet_has_its_own_network_namespace(droplet: Droplet) -> None:
    addrs = droplet.ssh("ip -o addr").stdout.splitlines()
    assert {line.split()[1] for line in addrs} == {"lo", "eth0"}
    assert any(f"inet {droplet.address}/30 " in line for line in addrs), addrs
    inner_ns = droplet.ssh("readlink /proc/1/ns/net").stdout.strip()
    assert inner_ns != os.readlink("/proc/self/ns/net")
    # no default route: nothing but this machine's side of the veth is reachable from inside
    assert "default" not in droplet.ssh("ip route; ip -6 route").stdout


def test_droplet_cannot_reach_past_the_veth(droplet: Droplet) -> None:
    host_ips = re.findall(r"inet (\d+\.\d+\.\d+\.\d+)/", subprocess.run(
        ["ip", "-o", "-4", "addr", "show", "scope", "global"], capture_output=True, text=True, check=True
    ).stdout)  # fmt: skip
    outside = next(ip for ip in host_ips if ipaddress.ip_address(ip) not in ipaddress.ip_network("10.213.0.0/16"))
    probe = (
        "import socket, sys\n"
        "try:\n"
        f"    socket.create_connection(({outside!r}, 80), timeout=3)\n"
        "except OSError as e:\n"
        "    print(e.errno)\n"
    )
    res = droplet.ssh(f"python3 -c {shlex.quote(probe)}", check=False)
    assert res.stdout.strip() == "101", res  # ENETUNREACH


def test_this_machines_network_is_unchanged(droplet: Droplet, host_baseline: dict[str, str]) -> None:
    now = host_network_snapshot(without_droplets=True)
    assert now == host_baseline
    # what the droplet did add here: its veth end with one /30 address, and the proxy on that address only
    own = subprocess.run(["ip", "-o", "addr", "show", "dev", droplet._s().veth_host or ""],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert re.findall(r"inet (\S+)", own) == [f"{droplet.host_address}/30"]
    port = droplet.proxy_port
    listeners = subprocess.run(["ss", "-Hltnp", "sport", f"= :{port}"], capture_output=True, text=True).stdout
    proxy = [ln.split()[3] for ln in listeners.splitlines() if f"pid={droplet._s().pids['tinyproxy'][0]}," in ln]
    assert proxy == [f"{droplet.host_address}:{port}"], listeners


def test_apt_update_works_through_the_proxy(droplet: Droplet) -> None:
    conf = droplet.ssh("apt-config dump Acquire::http::Proxy").stdout
    assert droplet.apt_proxy in conf
    res = droplet.ssh("apt-get update -q 2>&1", check=False, timeout=300)
    assert res.returncode == 0 and "Err:" not in res.stdout, res.stdout
    # and not around it: without the proxy there is no way out
    direct = droplet.ssh(
        "mkdir -p /tmp/lists/partial && apt-get update -q -o Acquire::http::Proxy=DIRECT -o Acquire::Retries=0"
        " -o Dir::State::Lists=/tmp/lists 2>&1; rm -rf /tmp/lists",
        timeout=120,
    ).stdout
    assert "Err:" in direct or "Failed" in direct, direct


def test_second_droplet_runs_beside_and_leaves_nothing(droplet: Droplet, host_baseline: dict[str, str]) -> None:
    """Also: HTTPS through the proxy once this machine's local CA is trusted inside (``trust_host_ca``), and a
    firewall rule and sysctls applied inside stay inside."""
    with Droplet(trust_host_ca=True, progress=lambda _msg: None) as other:
        st = other._s()
        assert other.address != droplet.address and other.name != droplet.name
        assert other.timings["boot_to_ssh"] < 60, other.timings
        assert other.ssh("hostname").stdout.strip() == other.name
        url = _https_index_url()
        if url:
            other.ssh("update-ca-certificates >/dev/null 2>&1")
            fetch = (
                "import urllib.request\n"
                f"h = urllib.request.ProxyHandler({{'https': {other.apt_proxy!r}}})\n"
                f"print(urllib.request.build_opener(h).open({url!r}, timeout=30).status)\n"
            )
            res = other.ssh(f"python3 -c {shlex.quote(fetch)}", check=False, timeout=60)
            assert res.stdout.strip() == "200", res
        # a firewall rule and net.* sysctls inside change only the droplet's own namespace
        other.set_apt_proxy()
        other.ssh(
            "apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q iptables >/dev/null",
            timeout=300,
        )
        other.ssh("iptables -A INPUT -p tcp --dport 9 -j DROP && sysctl -q -w net.ipv4.ip_forward=1")
        assert "--dport 9 -j DROP" in other.ssh("iptables -S INPUT").stdout
        assert other.ssh("sysctl -n net.ipv4.ip_forward").stdout.strip() == "1"
        assert host_network_snapshot(without_droplets=True) == host_baseline
        # the global (kernel.*, fs.*) sysctls stay read-only in the droplet: they would be this machine's
        assert other.ssh("sysctl -w kernel.kptr_restrict=1", check=False).returncode != 0
    assert other.state is None
    assert leftovers(st) == []
    assert host_network_snapshot(without_droplets=True) == host_baseline
    # the session's droplet is untouched
    assert droplet.ssh("hostname").stdout.strip() == droplet.name


def _https_index_url() -> str | None:
    """The package index pip itself defaults to (read at run time, so no registry host is written here)."""
    try:
        from pip._internal.models.index import PyPI
    except ImportError:
        return None
    return str(PyPI.simple_url).rstrip("/") + "/pip/"
