"""The local test droplet: a real systemd Debian 12 host in a network namespace, reached over SSH.

One ``Droplet`` is one booted ``systemd-nspawn`` container:

* its root is an overlay (or, if overlayfs fails, a ``cp -a --reflink=auto`` copy) of a Debian 12 tree that
  ``debootstrap`` builds ONCE into ``/var/cache/catalyst-droplet/rootfs-<hash>`` (hash of suite, mirror and
  package list); later runs never debootstrap again;
* it lives in a network namespace of its own (``catdrop-<pid>-<n>``) joined to this machine by ONE veth pair:
  ``10.213.X.1/30`` on this machine's side, ``10.213.X.2/30`` (``eth0``) inside. No NAT, no forwarding, no
  firewall or sysctl change in this machine's namespace, ever: the droplet reaches the package mirror only
  through a ``tinyproxy`` that listens on ``10.213.X.1:8888`` and allows only the droplet's address;
* root logs in with a per-run ed25519 key; the droplet's host keys are generated per run and pinned in a
  per-run ``known_hosts``, so SSH runs with strict host key checking;
* everything it starts or creates (nspawn and tinyproxy pids, the overlay mount, the netns and the veth) is
  recorded in ``<run dir>/state.json`` before it is created, and torn down by pid / by name, idempotently,
  from ``down()``, the context manager, ``atexit``, or ``python -m tests.droplet.droplet down`` after a crash.

CLI (as root, from the repository root)::

    python -m tests.droplet.droplet up [--trust-host-ca]   # boot one and leave it up; prints how to reach it
    python -m tests.droplet.droplet status                  # every run on this machine
    python -m tests.droplet.droplet ssh [NAME] [-- CMD...]  # log in (or run CMD) as root
    python -m tests.droplet.droplet down [NAME|--all|--stale]

Standard library only. See tests/droplet/README.md.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# ----------------------------------------------------------------------------- constants

SUITE = "bookworm"
#: The recipe's packages (DESIGN.md) plus what Ansible, pyinfra and testinfra need on a target:
#: python3-apt (ansible.builtin.apt), procps (ps/sysctl for testinfra and the sysctl role), tzdata (the
#: base role's timezone), cron (the schedule role's crontabs, as on a stock droplet image), netbase
#: (/etc/services, /etc/protocols).
INCLUDE = (
    "systemd", "systemd-sysv", "dbus", "openssh-server", "python3", "sudo", "iproute2", "ca-certificates",
    "python3-apt", "procps", "tzdata", "cron", "netbase",
)  # fmt: skip
#: Bump when the post-debootstrap preparation of the cached tree changes (it is part of the cache hash).
CACHE_FORMAT = 1

CACHE_DIR = Path(os.environ.get("CATALYST_DROPLET_CACHE", "/var/cache/catalyst-droplet"))
RUNS_DIR = Path(os.environ.get("CATALYST_DROPLET_RUNS", "/var/tmp/catalyst-droplet"))
NSPAWN_RUNTIME = Path("/run/systemd/nspawn")
SUBNET_POOL = ipaddress.ip_network("10.213.0.0/16")
PROXY_PORT = 8888
HOST_CA_DIR = Path("/usr/local/share/ca-certificates")

BOOT_TIMEOUT = float(os.environ.get("CATALYST_DROPLET_BOOT_TIMEOUT", "90"))
SSH_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0

Progress = Callable[[str], None]


class DropletError(RuntimeError):
    """Something in bringing a droplet up or down failed; the message says what and shows the log tail."""


def _stderr_progress(msg: str) -> None:
    print(f"[droplet] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- small helpers


def _run(
    args: Sequence[str | os.PathLike[str]], *, check: bool = True, timeout: float | None = 120, **kw: Any
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, **kw
    )
    if check and proc.returncode != 0:
        raise DropletError(
            f"command failed ({proc.returncode}): {shlex.join(str(a) for a in args)}\n"
            f"{(proc.stderr or proc.stdout).strip()}"
        )
    return proc


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)  # the droplet's console colours
    return "\n".join(text.splitlines()[-lines:])


def _proc_starttime(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks): a pid plus this names one process for good."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def _alive(pid: int, starttime: int | None) -> bool:
    """True if the process we recorded is still the one running under that pid (no pid reuse, not a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat.rsplit(")", 1)[1].split()
    return fields[0] != "Z" and (starttime is None or int(fields[19]) == starttime)


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(entry.name))
    return out


def _is_mounted(path: Path) -> bool:
    target = str(path)
    try:
        with open("/proc/self/mountinfo") as fh:
            return any(line.split()[4] == target for line in fh)
    except OSError:
        return False


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path).rstrip("/") + "/"
    with open("/proc/self/mountinfo") as fh:
        points = [line.split()[4] for line in fh]
    return sorted((p for p in points if p == str(path) or p.startswith(prefix)), key=len, reverse=True)


def missing_requirements() -> list[str]:
    """What this machine lacks to run a droplet (empty when everything is there)."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root (euid 0)")
    for tool in ("debootstrap", "systemd-nspawn", "tinyproxy", "ip", "nsenter", "ssh", "ssh-keygen"):
        if shutil.which(tool) is None:
            missing.append(tool)
    return missing


# ----------------------------------------------------------------------------- the package mirror


@dataclass(frozen=True)
class AptSource:
    uri: str
    suite: str
    components: tuple[str, ...] = ("main",)


def host_debian_sources(suite: str = SUITE) -> list[AptSource]:
    """The enabled Debian ``deb`` sources of this machine for ``suite`` (and -updates / -security), in order.

    Read at run time from /etc/apt/sources.list.d/*.sources (deb822) and *.list / /etc/apt/sources.list, so no
    mirror host name is written anywhere in the project.
    """
    wanted = {suite, f"{suite}-updates", f"{suite}-security"}
    found: list[AptSource] = []
    files = sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    for f in files:
        for stanza in re.split(r"\n\s*\n", f.read_text()):
            fields: dict[str, str] = {}
            key = None
            for line in stanza.splitlines():
                if line.startswith("#") or not line.strip():
                    continue
                if line[0].isspace() and key:
                    fields[key] += " " + line.strip()
                    continue
                key, _, value = line.partition(":")
                key = key.strip().lower()
                fields[key] = value.strip()
            if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes").lower() == "no":
                continue
            comps = tuple(fields.get("components", "main").split())
            for uri in fields.get("uris", "").split():
                for s in fields.get("suites", "").split():
                    if s in wanted:
                        found.append(AptSource(uri.rstrip("/"), s, comps))
    lists = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*.list"))]
    for f in lists:
        if not f.is_file():
            continue
        for line in f.read_text().splitlines():
            parts = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
            if len(parts) >= 3 and parts[0] == "deb" and parts[2] in wanted:
                found.append(AptSource(parts[1].rstrip("/"), parts[2], tuple(parts[3:]) or ("main",)))
    return found


def host_mirror(suite: str = SUITE) -> str:
    for src in host_debian_sources(suite):
        if src.suite == suite:
            return src.uri
    raise DropletError(
        f"no enabled 'deb' source for {suite} in /etc/apt/sources.list(.d): cannot tell which mirror to use"
    )


# ----------------------------------------------------------------------------- the cached root file system


def cache_key(suite: str = SUITE, mirror: str | None = None, include: Sequence[str] = INCLUDE) -> str:
    mirror = mirror or host_mirror(suite)
    text = json.dumps([CACHE_FORMAT, suite, mirror, sorted(include)])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


_PER_PACKAGE = {"Retrieving", "Validating", "Extracting"}


def ensure_rootfs(progress: Progress = _stderr_progress, include: Sequence[str] = INCLUDE) -> Path:
    """The cached Debian tree, built by debootstrap the first time only (under a lock, atomically renamed)."""
    sources = host_debian_sources(SUITE)
    mirror = host_mirror(SUITE)
    root = CACHE_DIR / f"rootfs-{cache_key(SUITE, mirror, include)}"
    if (root / ".catalyst-complete").exists():
        return root
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / f"{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent session builds it: wait, then use its tree
        if (root / ".catalyst-complete").exists():
            return root
        if root.exists():  # a half-built tree from an interrupted build
            shutil.rmtree(root)
        tmp = Path(tempfile.mkdtemp(prefix=f"{root.name}.build-", dir=CACHE_DIR))
        started = time.monotonic()
        progress(f"building the droplet image once (debootstrap {SUITE} from {mirror}) into {root} ...")
        cmd = [
            "debootstrap", "--variant=minbase", f"--include={','.join(include)}", SUITE, str(tmp), mirror,
        ]  # fmt: skip
        log = CACHE_DIR / f"{root.name}.debootstrap.log"
        try:
            with open(log, "w") as logf:
                proc = subprocess.Popen(
                    cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True
                )
                assert proc.stdout is not None
                counts: dict[str, int] = {}
                for line in proc.stdout:
                    logf.write(line)
                    words = line.split()
                    if words[:1] == ["I:"] and len(words) == 3 and words[1] in _PER_PACKAGE:
                        n = counts[words[1]] = counts.get(words[1], 0) + 1
                        if n % 25 != 1:  # one line per 25 packages is progress enough
                            continue
                        line = f"I: {words[1]} package #{n} ({words[2]})"
                    elif not line.startswith(("I:", "E:", "W:")):
                        continue
                    progress(f"  {time.monotonic() - started:5.1f}s {line.strip()}")
                rc = proc.wait()
            if rc != 0:
                raise DropletError(f"debootstrap failed ({rc}); log {log}:\n{_tail(log)}")
            _prepare_tree(tmp, sources)
            (tmp / ".catalyst-complete").write_text(json.dumps({"include": list(include), "mirror": mirror}) + "\n")
            tmp.rename(root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        progress(f"droplet image ready in {time.monotonic() - started:.0f}s: {root}")
    return root


def _prepare_tree(root: Path, sources: list[AptSource]) -> None:
    """Make the fresh tree a neutral image: per-boot identity, the host's Debian sources, no package cache."""
    (root / "etc/machine-id").write_text("")  # empty: systemd makes a fresh transient id every boot
    dbus_id = root / "var/lib/dbus/machine-id"
    if dbus_id.exists() and not dbus_id.is_symlink():
        dbus_id.unlink()
        os.symlink("/etc/machine-id", dbus_id)
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()  # generated per run, so every droplet has its own host keys
    lines = []
    seen = set()
    for src in sources:
        if (src.uri, src.suite) not in seen:
            seen.add((src.uri, src.suite))
            lines.append(f"deb {src.uri} {src.suite} {' '.join(src.components)}")
    (root / "etc/apt/sources.list").write_text("\n".join(lines) + "\n")
    for deb in (root / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()


# ----------------------------------------------------------------------------- state on disk


@dataclass
class State:
    """Everything a run created, written before each thing is created, so ``down`` can always clean up."""

    name: str
    run_dir: str
    index: int  # X in 10.213.X.0/30
    owner_pid: int
    owner_starttime: int | None
    keep: bool = False
    netns: str | None = None
    veth_host: str | None = None
    veth_peer: str | None = None
    root: str | None = None
    root_mode: str | None = None  # "overlay" | "copy"
    proxy_port: int = 8888
    pids: dict[str, list[int | None]] = field(default_factory=dict)  # role -> [pid, starttime]

    @property
    def path(self) -> Path:
        return Path(self.run_dir) / "state.json"

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.__dict__, indent=2) + "\n")
        tmp.replace(self.path)

    @classmethod
    def load(cls, path: Path) -> State:
        return cls(**json.loads(path.read_text()))


def _all_states() -> list[State]:
    out = []
    for p in sorted(RUNS_DIR.glob("*/state.json")):
        with contextlib.suppress(OSError, ValueError, TypeError):
            out.append(State.load(p))
    return out


# ----------------------------------------------------------------------------- the droplet


class Droplet:
    """One booted droplet. Use as a context manager, or call ``up()`` then ``down()`` (idempotent).

    After ``up()``: ``address`` (the droplet), ``host_address`` (this machine's side of the veth, where the
    proxy and any test servers listen), ``apt_proxy``, ``key`` (private key), ``known_hosts``, ``ssh_config``,
    ``ansible_inventory`` and ``pyinfra_inventory`` (files in the run dir).
    """

    def __init__(
        self,
        *,
        keep: bool = False,
        trust_host_ca: bool = False,
        progress: Progress = _stderr_progress,
    ) -> None:
        self.keep = keep
        self.trust_host_ca = trust_host_ca
        self.progress = progress
        self.state: State | None = None
        self.timings: dict[str, float] = {}
        self._atexit_registered = False

    # ---- attributes derived from the state

    def _s(self) -> State:
        if self.state is None:
            raise DropletError("the droplet is not up")
        return self.state

    @property
    def name(self) -> str:
        return self._s().name

    @property
    def run_dir(self) -> Path:
        return Path(self._s().run_dir)

    @property
    def root(self) -> Path:
        return Path(self._s().root or "")

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.ip_network(f"10.213.{self._s().index}.0/30")  # type: ignore[return-value]

    @property
    def host_address(self) -> str:
        return str(self.network.network_address + 1)

    @property
    def address(self) -> str:
        return str(self.network.network_address + 2)

    @property
    def proxy_port(self) -> int:
        return self._s().proxy_port

    @property
    def apt_proxy(self) -> str:
        return f"http://{self.host_address}:{self.proxy_port}"

    @property
    def key(self) -> Path:
        return self.run_dir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.run_dir / "known_hosts"

    @property
    def ssh_config(self) -> Path:
        return self.run_dir / "ssh_config"

    @property
    def ansible_inventory(self) -> Path:
        return self.run_dir / "hosts.yml"

    @property
    def pyinfra_inventory(self) -> Path:
        return self.run_dir / "inventory.py"

    @property
    def leader_pid(self) -> int | None:
        rec = self._s().pids.get("leader")
        return int(rec[0]) if rec and rec[0] else None

    def ssh_args(self) -> list[str]:
        """``ssh`` argv prefix that logs in as root (strict host key checking against the per-run known_hosts)."""
        return ["ssh", "-F", str(self.ssh_config), self.name]

    # ---- context manager

    def __enter__(self) -> Droplet:
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.keep:
            self.down()

    # ---- bring up

    def up(self) -> Droplet:
        if self.state is not None:
            return self
        missing = missing_requirements()
        if missing:
            raise DropletError(f"cannot run a droplet here; missing: {', '.join(missing)}")
        t0 = time.monotonic()
        lower = ensure_rootfs(self.progress)
        self.timings["image"] = time.monotonic() - t0
        if not self.keep and not self._atexit_registered:
            atexit.register(self.down)
            self._atexit_registered = True
        t1 = time.monotonic()
        try:
            self._allocate()
            self._make_root(lower)
            self._personalise()
            self._start_proxy()
            self._boot()
            self.timings["boot"] = time.monotonic() - t1
            self._wait_ssh()
            self._write_inventories()
        except BaseException:
            self.down()
            raise
        self.timings["boot_to_ssh"] = time.monotonic() - t1
        self.progress(
            f"{self.name} up at {self.address} (ssh after {self.timings['boot_to_ssh']:.1f}s; "
            f"proxy {self.apt_proxy}; run dir {self.run_dir})"
        )
        return self

    def _allocate(self) -> None:
        """Pick a free 10.213.X.0/30, create the run dir, the netns and the veth pair (under a machine-wide lock)."""
        RUNS_DIR.mkdir(parents=True, exist_ok=True)
        with open(RUNS_DIR / ".allocate.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            used = _used_subnet_indexes()
            index = next((i for i in range(1, 256) if i not in used), None)
            if index is None:
                raise DropletError("no free /30 left in 10.213.0.0/16 (255 droplets up?)")
            pid = os.getpid()
            name = f"catdrop-{pid}-{index}"
            run_dir = RUNS_DIR / name
            if run_dir.exists():
                raise DropletError(f"run dir {run_dir} exists; run `python -m tests.droplet.droplet down {name}`")
            run_dir.mkdir(mode=0o700)
            self.state = st = State(
                name=name, run_dir=str(run_dir), index=index, owner_pid=pid,
                owner_starttime=_proc_starttime(pid), keep=self.keep,
            )  # fmt: skip
            st.netns, st.veth_host, st.veth_peer = name, f"cdrop{index}h", f"cdrop{index}d"
            st.save()
            _run(["ip", "netns", "add", st.netns])
            _run(["ip", "link", "add", st.veth_host, "type", "veth", "peer", "name", st.veth_peer,
                  "netns", st.netns])  # fmt: skip
        host_cidr = f"{self.host_address}/{self.network.prefixlen}"
        peer_cidr = f"{self.address}/{self.network.prefixlen}"
        _run(["ip", "addr", "add", host_cidr, "dev", st.veth_host])
        _run(["ip", "link", "set", st.veth_host, "up"])
        ns = ["ip", "-n", st.netns]
        _run([*ns, "link", "set", st.veth_peer, "name", "eth0"])
        _run([*ns, "addr", "add", peer_cidr, "dev", "eth0"])
        _run([*ns, "link", "set", "eth0", "up"])
        _run([*ns, "link", "set", "lo", "up"])

    def _make_root(self, lower: Path) -> None:
        st = self._s()
        root = self.run_dir / "root"
        upper, work = self.run_dir / "upper", self.run_dir / "work"
        for d in (root, upper, work):
            d.mkdir()
        st.root, st.root_mode = str(root), "overlay"
        st.save()
        opts = f"lowerdir={lower},upperdir={upper},workdir={work}"
        res = _run(["mount", "-t", "overlay", "overlay", "-o", opts, root], check=False)
        if res.returncode != 0:
            self.progress(f"overlayfs failed ({res.stderr.strip()}); copying the image instead")
            st.root_mode = "copy"
            st.save()
            root.rmdir()
            _run(["cp", "-a", "--reflink=auto", lower, root], timeout=600)
        (root / ".catalyst-complete").unlink(missing_ok=True)

    def _personalise(self) -> None:
        """Per-run identity written into the droplet before boot: hostname, host keys, root's authorized key."""
        root, name = self.root, self.name
        (root / "etc/hostname").write_text(name + "\n")
        (root / "etc/hosts").write_text(
            f"127.0.0.1\tlocalhost\n127.0.1.1\t{name}\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        )
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"catalyst-droplet-{name}", "-f", self.key])
        self.key.chmod(0o600)
        _run(["ssh-keygen", "-q", "-A", "-f", root])  # the droplet's own host keys, new for every run
        known = []
        for pub in sorted((root / "etc/ssh").glob("ssh_host_*_key.pub")):
            kind, blob = pub.read_text().split()[:2]
            known.append(f"{self.address} {kind} {blob}")
        self.known_hosts.write_text("\n".join(known) + "\n")
        ssh_dir = root / "root/.ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        ssh_dir.chmod(0o700)
        auth = ssh_dir / "authorized_keys"
        auth.write_text(Path(f"{self.key}.pub").read_text())
        auth.chmod(0o600)
        self.ssh_config.write_text(
            f"Host {name}\n"
            f"    HostName {self.address}\n"
            "    User root\n"
            f"    IdentityFile {self.key}\n"
            "    IdentitiesOnly yes\n"
            f"    UserKnownHostsFile {self.known_hosts}\n"
            "    StrictHostKeyChecking yes\n"
            "    BatchMode yes\n"
            "    ConnectTimeout 5\n"
            "    LogLevel ERROR\n"
        )
        if self.trust_host_ca:
            self.install_host_ca()

    def install_host_ca(self) -> list[str]:
        """Copy this machine's local CA additions into the droplet's trust store (for HTTPS via the proxy).

        Before boot this only copies the files (``update-ca-certificates`` then runs over SSH after boot);
        returns the file names copied.
        """
        dest = self.root / HOST_CA_DIR.relative_to("/")
        dest.mkdir(parents=True, exist_ok=True)
        names = []
        for crt in sorted(HOST_CA_DIR.glob("**/*.crt")):
            shutil.copy2(crt, dest / crt.name)
            names.append(crt.name)
        return names

    def _start_proxy(self) -> None:
        st = self._s()
        st.proxy_port = _free_port(self.host_address, PROXY_PORT)
        if st.proxy_port != PROXY_PORT:  # e.g. the Debian package's own tinyproxy.service on *:8888
            self.progress(f"port {PROXY_PORT} is taken on {self.host_address}; the proxy uses {st.proxy_port}")
        st.save()
        conf = self.run_dir / "tinyproxy.conf"
        conf.write_text(
            "# tinyproxy for one local test droplet: listens on this machine's side of its veth only\n"
            "User nobody\nGroup nogroup\n"
            f"Port {st.proxy_port}\nListen {self.host_address}\n"
            "Timeout 600\nMaxClients 64\nLogLevel Notice\n"
            f"Allow {self.address}\n"
            "ConnectPort 443\nDisableViaHeader Yes\n"
        )
        log = open(self.run_dir / "tinyproxy.log", "wb")  # noqa: SIM115 - handed to the child
        with log:
            proc = subprocess.Popen(
                ["tinyproxy", "-d", "-c", str(conf)], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True,
            )  # fmt: skip
        st.pids["tinyproxy"] = [proc.pid, _proc_starttime(proc.pid)]
        st.save()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise DropletError(f"tinyproxy exited ({proc.returncode}):\n{_tail(self.run_dir / 'tinyproxy.log')}")
            listening = _run(["ss", "-Hltn", "src", f"{self.host_address}:{st.proxy_port}"], check=False).stdout
            if listening.strip():
                return
            time.sleep(0.05)
        raise DropletError(f"tinyproxy did not listen on {self.apt_proxy}:\n{_tail(self.run_dir / 'tinyproxy.log')}")

    def _boot(self) -> None:
        st = self._s()
        if not _is_mounted(NSPAWN_RUNTIME):
            NSPAWN_RUNTIME.mkdir(parents=True, exist_ok=True)
            res = _run(["mount", "-t", "tmpfs", "tmpfs", NSPAWN_RUNTIME], check=False)
            if res.returncode != 0 and not _is_mounted(NSPAWN_RUNTIME):  # lost a race with another session: fine
                raise DropletError(f"mount tmpfs on {NSPAWN_RUNTIME} failed: {res.stderr.strip()}")
        cmd = [
            "systemd-nspawn", "-D", str(self.root), "--boot", "--register=no", "--keep-unit",
            f"--network-namespace-path=/run/netns/{st.netns}", "--capability=CAP_NET_ADMIN,CAP_NET_RAW",
            f"--machine={st.name}", "--console=read-only", "--link-journal=no",
            "--resolv-conf=off", "--timezone=off",
        ]  # fmt: skip
        log_path = self.run_dir / "nspawn.log"
        log = open(log_path, "wb")  # noqa: SIM115 - handed to the child
        with log:
            proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                # /proc/sys/net writable inside: nspawn does that by itself only for --private-network, and the
                # droplet's net.* sysctls belong to its own namespace (kernel.*, fs.*, vm.* stay read-only).
                env={**os.environ, "SYSTEMD_LOG_COLOR": "0", "SYSTEMD_NSPAWN_API_VFS_WRITABLE": "network"},
            )  # fmt: skip
        st.pids["nspawn"] = [proc.pid, _proc_starttime(proc.pid)]
        st.save()
        deadline = time.monotonic() + BOOT_TIMEOUT
        leader = None
        last = ""
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise DropletError(f"systemd-nspawn exited ({proc.returncode}); {log_path}:\n{_tail(log_path)}")
            if leader is None:
                leader = _find_leader(proc.pid)
                if leader is not None:
                    st.pids["leader"] = [leader, _proc_starttime(leader)]
                    st.save()
            if leader is not None:
                res = self.nsenter(["systemctl", "is-system-running"], check=False, timeout=10)
                last = (res.stdout or res.stderr).strip()
                if last in ("running", "degraded"):
                    return
            time.sleep(0.2)
        raise DropletError(
            f"{st.name} did not finish booting within {BOOT_TIMEOUT:.0f}s (is-system-running: {last or 'n/a'});"
            f" {log_path}:\n{_tail(log_path)}"
        )

    def _wait_ssh(self) -> None:
        deadline = time.monotonic() + SSH_TIMEOUT
        res = None
        while time.monotonic() < deadline:
            res = _run([*self.ssh_args(), "true"], check=False, timeout=15)
            if res.returncode == 0:
                return
            time.sleep(0.2)
        detail = res.stderr.strip() if res else ""
        raise DropletError(
            f"ssh root@{self.address} did not work within {SSH_TIMEOUT:.0f}s: {detail}\n"
            f"{_tail(self.run_dir / 'nspawn.log')}"
        )

    def _write_inventories(self) -> None:
        ca_files = [str(p) for p in sorted(HOST_CA_DIR.glob("**/*.crt"))]
        ssh_args = f"-o UserKnownHostsFile={self.known_hosts} -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes"
        host_vars = {
            "ansible_host": self.address,
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(self.key),
            "ansible_ssh_common_args": ssh_args,
            "ansible_python_interpreter": "/usr/bin/python3",
            "catalyst_apt_proxy": self.apt_proxy,
            "catalyst_droplet_host_address": self.host_address,
            "catalyst_extra_ca_certs": ca_files,
        }
        doc = {"all": {"children": {"droplets": {"hosts": {self.name: host_vars}}}}}
        header = (
            f"# Generated by tests/droplet/droplet.py for the local test droplet {self.name}.\n"
            "# Deleted with the droplet; see inventory/local/README.md.\n"
        )
        # JSON is YAML: no YAML library needed, and every value is quoted unambiguously.
        self.ansible_inventory.write_text(header + json.dumps(doc, indent=2) + "\n")
        pyinfra_data = {
            "ssh_user": "root",
            "ssh_key": str(self.key),
            "ssh_known_hosts_file": str(self.known_hosts),
            "ssh_strict_host_key_checking": "yes",
            "catalyst_apt_proxy": self.apt_proxy,
            "catalyst_droplet_host_address": self.host_address,
            "catalyst_extra_ca_certs": ca_files,
        }
        self.pyinfra_inventory.write_text(
            header
            + "# pyinfra inventory: `pyinfra <this file> <deploy>`.\n\n"
            + f"droplets = [\n    ({self.address!r}, {pyinfra_data!r}),\n]\n"
        )

    # ---- running commands inside

    def nsenter(
        self, cmd: Sequence[str], *, check: bool = True, timeout: float | None = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` inside the droplet by entering the namespaces of its PID 1 (no SSH needed)."""
        leader = self.leader_pid
        if leader is None:
            raise DropletError("the droplet has no running init yet")
        return _run(["nsenter", "-t", str(leader), "-a", "--", *cmd], check=check, timeout=timeout)

    def ssh(self, command: str, *, check: bool = True, timeout: float | None = 120) -> subprocess.CompletedProcess[str]:
        """Run a shell command line in the droplet as root over SSH."""
        return _run([*self.ssh_args(), command], check=check, timeout=timeout)

    def set_apt_proxy(self) -> None:
        """Point apt in the droplet at the proxy (what the test inventory does for the roles)."""
        self.ssh(
            "printf 'Acquire::http::Proxy \"%s\";\\n' "
            f"{shlex.quote(self.apt_proxy)} > /etc/apt/apt.conf.d/90catalyst-test-proxy"
        )

    # ---- tear down

    def down(self) -> None:
        """Stop what this run started (by pid), unmount, delete netns, veth and the run dir. Idempotent."""
        if self.state is None:
            return
        teardown(self.state, self.progress)
        self.state = None


def _free_port(address: str, preferred: int) -> int:
    """``preferred`` if it can be bound on ``address``, else a free port the kernel picks there."""
    for port in (preferred, 0):
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as tinyproxy does: TIME_WAIT is no conflict
            try:
                sock.bind((address, port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise DropletError(f"no free TCP port on {address}")


def _find_leader(nspawn_pid: int) -> int | None:
    """The container's init: the descendant of nspawn that is PID 1 in a PID namespace of its own."""
    todo = [nspawn_pid]
    while todo:
        pid = todo.pop()
        for child in _children(pid):
            try:
                status = Path(f"/proc/{child}/status").read_text()
            except OSError:
                continue
            nspid = next((ln.split()[1:] for ln in status.splitlines() if ln.startswith("NSpid:")), [])
            if len(nspid) >= 2 and nspid[-1] == "1":
                return child
            todo.append(child)
    return None


def _used_subnet_indexes() -> set[int]:
    used = {st.index for st in _all_states()}
    out = _run(["ip", "-o", "-4", "addr", "show"]).stdout + _run(["ip", "-4", "route", "show", "table", "all"]).stdout
    for m in re.finditer(r"\b(\d+\.\d+\.\d+\.\d+)(?:/(\d+))?", out):
        with contextlib.suppress(ValueError):
            net = ipaddress.ip_network(f"{m.group(1)}/{m.group(2) or 32}", strict=False)
            if net.overlaps(SUBNET_POOL):
                if net.prefixlen < 24:  # a wide route over the pool: refuse all of it
                    return set(range(256))
                used.add(int(net.network_address.packed[2]))
    return used


def _stop_pid(role: str, rec: list[int | None], sig: int, wait: float) -> None:
    pid, start = rec[0], rec[1] if len(rec) > 1 else None
    if not pid or not _alive(pid, start):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        _reap(pid)
        if not _alive(pid, start):
            return
        time.sleep(0.1)
    if _alive(pid, start):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _alive(pid, start):
            _reap(pid)
            time.sleep(0.05)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def teardown(st: State, progress: Progress = _stderr_progress) -> list[str]:
    """Undo everything ``st`` records. Safe to call again, and after a crash at any point. Returns problems."""
    problems: list[str] = []
    # 1. the container: SIGTERM to nspawn asks the droplet's systemd to power off; then SIGKILL by pid.
    if "nspawn" in st.pids:
        _stop_pid("nspawn", st.pids["nspawn"], signal.SIGTERM, STOP_TIMEOUT)
    if "leader" in st.pids:  # nspawn gone but its init left behind (nspawn was SIGKILLed): kill that pid-ns init
        _stop_pid("leader", st.pids["leader"], signal.SIGKILL, 5)
    if "tinyproxy" in st.pids:
        _stop_pid("tinyproxy", st.pids["tinyproxy"], signal.SIGTERM, 5)
    for role, rec in st.pids.items():
        if rec[0] and _alive(rec[0], rec[1] if len(rec) > 1 else None):
            problems.append(f"{role} pid {rec[0]} still running")
    # 2. the root file system
    run_dir = Path(st.run_dir)
    if run_dir.exists():
        for point in _mounts_under(run_dir):
            res = _run(["umount", point], check=False)
            if res.returncode != 0:
                time.sleep(0.5)
                res = _run(["umount", point], check=False)
            if res.returncode != 0:
                res = _run(["umount", "-l", point], check=False)
                if res.returncode != 0:
                    problems.append(f"cannot unmount {point}: {res.stderr.strip()}")
    # 3. the network: deleting the netns destroys the droplet's end of the veth, which takes the host end too
    if st.netns and Path(f"/run/netns/{st.netns}").exists():
        res = _run(["ip", "netns", "delete", st.netns], check=False)
        if res.returncode != 0:
            problems.append(f"ip netns delete {st.netns}: {res.stderr.strip()}")
    if st.veth_host:
        for _ in range(50):  # the kernel removes the pair asynchronously once the namespace is gone
            if _run(["ip", "link", "show", "dev", st.veth_host], check=False).returncode != 0:
                break
            if _run(["ip", "link", "delete", st.veth_host], check=False).returncode == 0:
                break
            time.sleep(0.1)
        else:
            problems.append(f"veth {st.veth_host} still present")
    # 4. the run dir (never while anything is still mounted under it)
    if run_dir.exists():
        if _mounts_under(run_dir):
            problems.append(f"{run_dir} still has mounts; left in place")
        elif problems:
            problems.append(f"{run_dir} left in place for `down {st.name}`")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
            if run_dir.exists():
                problems.append(f"could not remove {run_dir}")
    if problems:
        progress(f"{st.name}: teardown incomplete: " + "; ".join(problems))
    return problems


def find_state(name: str | None) -> State:
    states = _all_states()
    if name:
        for st in states:
            if st.name == name:
                return st
        raise DropletError(f"no droplet run named {name!r} in {RUNS_DIR}")
    if len(states) == 1:
        return states[0]
    if not states:
        raise DropletError(f"no droplet is up (no run in {RUNS_DIR})")
    raise DropletError("several droplets are up; name one: " + ", ".join(s.name for s in states))


def attach(name: str | None = None, progress: Progress = _stderr_progress) -> Droplet:
    """A ``Droplet`` for a run that is already up (e.g. left by ``up`` or CATALYST_DROPLET_KEEP=1)."""
    d = Droplet(keep=True, progress=progress)
    d.state = find_state(name)
    return d


def stale_states() -> list[State]:
    """Runs whose owner process is gone and that were not meant to be kept: left behind by a crash."""
    return [st for st in _all_states() if not st.keep and not _alive(st.owner_pid, st.owner_starttime)]


# ----------------------------------------------------------------------------- checks on this machine

DROPLET_LINK = re.compile(r"\bcdrop\d+[hd]\b")


def host_network_snapshot(*, without_droplets: bool = False) -> dict[str, str]:
    """This machine's own network state: forwarding sysctls, firewall rules (iptables/nft if installed), policy
    routing, routes, links and network namespaces. ``without_droplets`` drops the lines that belong to droplet
    veths and namespaces (the only things a droplet may add here)."""
    snap: dict[str, str] = {}
    for key in ("net/ipv4/ip_forward", "net/ipv4/conf/all/forwarding", "net/ipv4/conf/default/forwarding",
                "net/ipv6/conf/all/forwarding", "net/ipv6/conf/default/forwarding"):  # fmt: skip
        with contextlib.suppress(OSError):
            snap[f"sysctl {key.replace('/', '.')}"] = Path("/proc/sys", key).read_text().strip()
    for cmd in (["iptables-save"], ["ip6tables-save"], ["nft", "list", "ruleset"]):
        if shutil.which(cmd[0]):
            res = _run(cmd, check=False)
            # iptables-save prints the time it ran and packet counters: drop both
            text = "\n".join(
                re.sub(r"\[\d+:\d+\]", "[]", ln) for ln in res.stdout.splitlines() if not ln.startswith("#")
            )
            snap[" ".join(cmd)] = f"rc={res.returncode}\n{text}"
        else:
            snap[" ".join(cmd)] = "(not installed)"
    link_re = re.compile(r"^\d+: ([^:@]+)")
    links = [m.group(1) for ln in _run(["ip", "-o", "link"]).stdout.splitlines() if (m := link_re.match(ln))]
    snap["links"] = "\n".join(links)
    snap["ip rule"] = _run(["ip", "rule"]).stdout
    snap["ip -6 rule"] = _run(["ip", "-6", "rule"], check=False).stdout
    snap["routes"] = _run(["ip", "route", "show", "table", "all"]).stdout
    snap["routes6"] = _run(["ip", "-6", "route", "show", "table", "all"], check=False).stdout
    snap["netns"] = _run(["ip", "netns", "list"]).stdout
    if without_droplets:
        for k in ("links", "routes", "routes6"):
            snap[k] = "\n".join(ln for ln in snap[k].splitlines() if not DROPLET_LINK.search(ln))
        snap["netns"] = "\n".join(ln for ln in snap["netns"].splitlines() if not ln.startswith("catdrop-"))
    return snap


def leftovers(st: State) -> list[str]:
    """What of run ``st`` is still on this machine (empty after a clean teardown)."""
    out = []
    for role, rec in st.pids.items():
        if rec[0] and _alive(rec[0], rec[1] if len(rec) > 1 else None):
            out.append(f"process {role} pid {rec[0]}")
    if st.netns and st.netns in _run(["ip", "netns", "list"]).stdout.split():
        out.append(f"netns {st.netns}")
    if st.veth_host and _run(["ip", "link", "show", "dev", st.veth_host], check=False).returncode == 0:
        out.append(f"veth {st.veth_host}")
    out += [f"mount {m}" for m in _mounts_under(Path(st.run_dir))]
    if Path(st.run_dir).exists():
        out.append(f"run dir {st.run_dir}")
    return out


# ----------------------------------------------------------------------------- CLI


def _describe(d: Droplet) -> str:
    st = d._s()
    alive = {role: bool(rec[0] and _alive(rec[0], rec[1])) for role, rec in st.pids.items()}
    return "\n".join(
        [
            f"{st.name}: droplet {d.address}, this machine's side {d.host_address}, proxy {d.apt_proxy}",
            f"  processes: {', '.join(f'{r} {st.pids[r][0]} ' + ('up' if a else 'GONE') for r, a in alive.items())}",
            f"  root ({st.root_mode}): {st.root}",
            f"  ssh:      ssh -F {d.ssh_config} {st.name}",
            f"  ansible:  ansible-playbook -i {d.ansible_inventory} PLAYBOOK",
            f"  pyinfra:  pyinfra {d.pyinfra_inventory} DEPLOY",
            f"  down:     python -m tests.droplet.droplet down {st.name}",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.droplet.droplet", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_up = sub.add_parser("up", help="boot a droplet and leave it running")
    p_up.add_argument("--trust-host-ca", action="store_true", help="install this machine's local CA in it")
    p_up.add_argument("--apt-proxy", action="store_true", help="also point its apt at the proxy")
    sub.add_parser("status", help="list droplet runs on this machine")
    p_ssh = sub.add_parser("ssh", help="ssh into a droplet as root (args after -- are the command)")
    p_ssh.add_argument("name", nargs="?")
    p_ssh.add_argument("command", nargs=argparse.REMAINDER)
    p_down = sub.add_parser("down", help="tear a droplet down (also after a crash)")
    p_down.add_argument("name", nargs="?")
    g = p_down.add_mutually_exclusive_group()
    g.add_argument("--all", action="store_true", help="every run on this machine")
    g.add_argument("--stale", action="store_true", help="only runs whose owner process is gone")
    argv = list(sys.argv[1:] if argv is None else argv)
    command: list[str] = []
    if argv[:1] == ["ssh"] and "--" in argv:  # everything after -- is the remote command, untouched
        cut = argv.index("--")
        argv, command = argv[:cut], argv[cut + 1 :]
    args = parser.parse_args(argv)

    try:
        if args.cmd == "up":
            d = Droplet(keep=True, trust_host_ca=args.trust_host_ca).up()
            if args.trust_host_ca:
                d.ssh("update-ca-certificates >/dev/null")
            if args.apt_proxy:
                d.set_apt_proxy()
            print(f"up in {d.timings['boot_to_ssh']:.1f}s (image {d.timings['image']:.1f}s)")
            print(_describe(d))
        elif args.cmd == "status":
            states = _all_states()
            if not states:
                print(f"no droplet runs in {RUNS_DIR}")
            for st in states:
                d = Droplet(keep=True)
                d.state = st
                owner = "alive" if _alive(st.owner_pid, st.owner_starttime) else "gone"
                print(_describe(d) + f"\n  owner pid {st.owner_pid} ({owner}), keep={st.keep}")
        elif args.cmd == "ssh":
            d = attach(args.name)
            command = command or args.command
            os.execvp("ssh", [*d.ssh_args(), *command])
        elif args.cmd == "down":
            if args.all:
                targets = _all_states()
            elif args.stale:
                targets = stale_states()
            else:
                targets = [find_state(args.name)]
            bad = 0
            for st in targets:
                problems = teardown(st)
                print(f"{st.name}: {'down' if not problems else 'INCOMPLETE: ' + '; '.join(problems)}")
                bad += bool(problems)
            if not targets:
                print("nothing to tear down")
            return 1 if bad else 0
    except DropletError as exc:
        print(f"droplet: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
