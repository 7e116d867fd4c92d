"""Security audit (issue 7): hardening and secret-handling figures on a freshly provisioned droplet.

One local droplet with its own simulator and healthchecks server (tests/droplet/stage.py), provisioned with ONE
tool: pyinfra (playbooks/site.py, the test vault) unless ``--tool ansible`` (playbooks/site.yml); the operational
playbooks then run with the same tool. Then, each check printing PASS or FAIL with what it measured (INFO rows are
context and never fail the audit):

- the Lynis hardening index, the tests short of their points, and the remaining warnings (Debian's ``lynis``,
  installed inside the droplet, run first, on the droplet as provisioning left it); and whether each
  /etc/login.defs policy key is set exactly once (Lynis reads them with ``grep ^KEY``);
- ``ssh-audit`` (PyPI, pinned in the dev extra) from this machine against the hardened sshd at the droplet's address;
- ``systemd-analyze security``: whether any systemd unit runs Catalyst (the roles install none: every job runs from
  the service user's crontab), and the exposure of the distro units the roles DO configure;
- PostgreSQL listening on loopback only, and a connection from this machine to the droplet's port 5432 refused;
- the service user: no sudo, no access to root's files;
- the secret files at their modes, and which files on the droplet hold any vault value at all;
- no vault value (tests.droplet.stage.secret_values()) in ``ps`` while a trading session runs, the logs (/var/log,
  the journal), the reports, the backups and their logs, the database, or the output of the operational playbooks
  (health, backup, report, and the provisioning run itself).

Exit status 1 if any check FAILs.

    .venv/bin/python benchmarks/audit.py [--tool pyinfra|ansible]
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "agent"))

from tests.droplet.stage import CATALYST, Fleet, Stage, build_wheelhouse, secret_values  # noqa: E402

BIN = Path(sys.executable).parent
LYNIS_TARGET = 80
USER = "catalyst"
DB = "catalyst_trading"
#: Where a vault value may legitimately be written on the droplet: the agent's secrets file only.
SECRET_FILES = {"/etc/catalyst/secrets.env"}
EXPECTED_MODES = {
    "/etc/catalyst/secrets.env": ("400", USER, USER),
    "/etc/catalyst/catalyst.env": ("640", "root", USER),
    "/etc/catalyst": ("750", "root", USER),
}
#: Trees searched for vault values (file contents, binary files included).
SCAN_TREES = "/etc /opt /usr/local /var /home /root /tmp /run /srv"
T0 = time.monotonic()


def say(msg: str) -> None:
    print(f"[audit {time.monotonic() - T0:6.1f}s] {msg}", flush=True)


@dataclass
class Check:
    name: str
    status: str  # PASS, FAIL or INFO
    measured: str


@dataclass
class Lynis:
    index: int  # the hardening index; -1 when the report has none
    warnings: list[str]
    suggestions: list[str]
    lost: dict[str, int]  # test ID -> hardening points short of its maximum


def run_lynis(sh: Callable[..., subprocess.CompletedProcess[str]]) -> Lynis:
    """Install Debian's lynis in the droplet and run ``lynis audit system`` there (``sh(command, timeout=...)`` runs
    a command in the droplet); also used by benchmarks/bench_droplet.py."""
    sh("DEBIAN_FRONTEND=noninteractive apt-get install -y -q lynis >/dev/null 2>&1", timeout=900)
    out = sh("lynis audit system --quick --no-colors >/dev/null 2>&1; cat /var/log/lynis-report.dat",
             timeout=900).stdout  # fmt: skip
    # Where the missing points are: lynis.log names each test and the points it assigned (of its maximum).
    lost: dict[str, int] = {}
    test = "?"
    for line in sh("cat /var/log/lynis.log").stdout.splitlines():
        m = re.search(r"Performing test ID (\S+)", line)
        if m:
            test = m.group(1)
        m = re.search(r"assigned partial number of hardening points \((\d+) of (\d+)\)", line)
        if m and int(m.group(1)) < int(m.group(2)):
            lost[test] = lost.get(test, 0) + int(m.group(2)) - int(m.group(1))
    index = re.search(r"^hardening_index=(\d+)", out, re.M)
    return Lynis(int(index.group(1)) if index else -1, re.findall(r"^warning\[\]=(.*)$", out, re.M),
                 re.findall(r"^suggestion\[\]=(.*)$", out, re.M), lost)  # fmt: skip


class Audit:
    def __init__(self, fleet: Fleet, stage: Stage, tool: str = "pyinfra") -> None:
        self.fleet = fleet
        self.stage = stage
        self.tool = tool
        self.checks: list[Check] = []
        self.secrets = secret_values()
        # the droplet's own healthchecks ping URLs: secrets on a real droplet too (roles/monitoring)
        self.ping_urls = [stage.hc.ping_url(stage.hc.uuid_of(c)) for c in ("cycle", "risk", "backup", "report")]

    def record(self, name: str, ok: bool | None, measured: str) -> None:
        status = "INFO" if ok is None else ("PASS" if ok else "FAIL")
        self.checks.append(Check(name, status, measured))
        say(f"{status} {name}: {measured}")

    def sh(self, command: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return self.stage.ssh(command, check=False, timeout=timeout)

    def found_in(self, text: str) -> list[str]:
        """Which vault values (named by position, never shown) occur in ``text``."""
        return [f"vault value #{i + 1}" for i, v in enumerate(self.secrets) if v in text]

    def grep_files(self, paths: str, extra: str = "") -> list[str]:
        """Files under ``paths`` (on the droplet) whose contents hold any vault value."""
        patterns = "\n".join(self.secrets)
        cmd = (f"f=$(mktemp) && printf '%s\\n' {shlex.quote(patterns)} > $f && "
               f"grep -rlaF -f $f {extra} {paths} 2>/dev/null | grep -v \"^$f$\"; rm -f $f")  # fmt: skip
        return [ln for ln in self.sh(cmd).stdout.splitlines() if ln.strip()]

    # ------------------------------------------------------------------ hardening
    def lynis(self) -> None:
        r = run_lynis(self.sh)
        say("Lynis points lost by test: " + ", ".join(f"{k} -{v}" for k, v in sorted(r.lost.items())))
        self.record("Lynis hardening index", r.index >= LYNIS_TARGET, f"{r.index} (target ≥ {LYNIS_TARGET}); "
                    f"{len(r.warnings)} warning(s), {len(r.suggestions)} suggestion(s); tests short of their points: "
                    + ", ".join(f"{k} −{v}" for k, v in sorted(r.lost.items())))  # fmt: skip
        self.record("Lynis warnings", None, "; ".join(w.split("|")[0] + " " + w.split("|")[1] for w in r.warnings
                                                      if "|" in w) or "none")  # fmt: skip
        say("Lynis suggestions:\n  " + "\n  ".join(sorted({"|".join(s.split("|")[:3]) for s in r.suggestions})))

    def login_defs(self) -> None:
        """roles/base sets each key once (Ansible's lineinfile replaces the last matching line)."""
        counts: dict[str, list[str]] = {}
        for key in ("UMASK", "PASS_MAX_DAYS", "PASS_MIN_DAYS", "SHA_CRYPT_MIN_ROUNDS", "SHA_CRYPT_MAX_ROUNDS"):
            lines = self.sh(f"grep -E '^{key}[[:space:]]' /etc/login.defs").stdout.splitlines()
            counts[key] = lines
        dup = {k: len(v) for k, v in counts.items() if len(v) != 1}
        self.record("/etc/login.defs: each policy key set once", not dup,
                    "; ".join(f"{k} ×{len(v)} ({', '.join(sorted({' '.join(x.split()[1:]) for x in v})) or '-'})"
                              for k, v in counts.items()))  # fmt: skip

    def ssh_audit(self) -> None:
        addr = self.stage.droplet.address
        res = subprocess.run([str(BIN / "ssh-audit"), "-j", "-p", "22", addr], capture_output=True, text=True,
                             timeout=120, stdin=subprocess.DEVNULL)  # fmt: skip
        try:
            data = json.loads(res.stdout)
        except ValueError:
            self.record("ssh-audit", False, f"no JSON (exit {res.returncode}): {(res.stdout + res.stderr)[-300:]}")
            return
        fails: list[str] = []
        warns: list[str] = []
        for section in ("kex", "key", "enc", "mac"):
            for alg in data.get(section, []):
                notes = alg.get("notes", {})
                if notes.get("fail"):
                    fails.append(f"{section} {alg['algorithm']}")
                if notes.get("warn"):
                    warns.append(f"{section} {alg['algorithm']}")
        banner = data.get("banner", {})
        software = banner.get("software") or banner.get("raw", "?")
        recs = data.get("recommendations", {})
        # {level: {action: {section: [{"name": ...}]}}}
        n_recs = sum(len(algs) for actions in recs.values() for sections in actions.values()
                     for algs in sections.values())  # fmt: skip
        self.record("ssh-audit (droplet:22 from this machine)", not fails,
                    f"{software}: {len(data.get('kex', []))} kex, {len(data.get('key', []))} host key, "
                    f"{len(data.get('enc', []))} cipher, {len(data.get('mac', []))} MAC algorithms; "
                    f"fail: {', '.join(fails) or 'none'}; warn: {', '.join(warns) or 'none'}; "
                    f"recommendations: {n_recs} (exit {res.returncode})")  # fmt: skip
        say("ssh-audit recommendations: " + json.dumps(recs))

    def sshd_auth(self) -> None:
        t = self.sh("sshd -T 2>/dev/null | grep -Ei '^(permitrootlogin|passwordauthentication|"
                    "kbdinteractiveauthentication|pubkeyauthentication|permitemptypasswords|maxauthtries|"
                    "allowtcpforwarding|x11forwarding) '").stdout  # fmt: skip
        conf = dict(ln.split(None, 1) for ln in t.splitlines() if " " in ln)
        ok = conf.get("passwordauthentication") == "no" and conf.get("kbdinteractiveauthentication") == "no" \
            and conf.get("permitrootlogin") in ("prohibit-password", "without-password", "no") \
            and conf.get("permitemptypasswords") == "no"  # fmt: skip
        # A login without a key, from this machine: which methods does sshd offer?
        probe = subprocess.run(
            ["ssh", "-v", "-o", "BatchMode=yes", "-o", "PubkeyAuthentication=no", "-o", "StrictHostKeyChecking=no",
             "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10", f"nobody@{self.stage.droplet.address}",
             "true"], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)  # fmt: skip
        offered = re.findall(r"Authentications that can continue: (\S+)", probe.stderr)
        ok = ok and probe.returncode != 0 and offered and set(offered[-1].split(",")) == {"publickey"}
        self.record("sshd: key-only login", bool(ok), ", ".join(f"{k} {v}" for k, v in sorted(conf.items()))
                    + f"; offered to a client without a key: {offered[-1] if offered else '?'}")  # fmt: skip

    def systemd_units(self) -> None:
        units = self.sh("systemctl list-unit-files --no-legend --no-pager | awk '{print $1}'").stdout.split()
        ours = [u for u in units if "catalyst" in u.lower()]
        cat_refs = self.sh("grep -rlsi catalyst /etc/systemd /lib/systemd/system /usr/lib/systemd/system "
                           "/run/systemd/system || true").stdout.split()  # fmt: skip
        jobs = self.sh(f"crontab -u {USER} -l | grep -c '^[^#].*{CATALYST}'").stdout.strip()
        root_jobs = self.sh("(crontab -u root -l 2>/dev/null; cat /etc/crontab /etc/cron.d/* 2>/dev/null) "
                            "| grep -c '^[^#].*catalyst' || true").stdout.strip()  # fmt: skip
        self.record("no Catalyst systemd unit; jobs run from the service user's crontab",
                    not ours and not cat_refs and root_jobs == "0",
                    f"Catalyst units: {', '.join(ours + cat_refs) or 'none'}; {jobs} jobs in {USER}'s crontab, "
                    f"{root_jobs} Catalyst lines in root's / system crontabs")  # fmt: skip
        exposure = []
        for unit in ("postgresql@15-main.service", "cron.service", "ssh.service", "fail2ban.service",
                     "nftables.service", "unattended-upgrades.service"):  # fmt: skip
            out = self.sh(f"systemd-analyze security --no-pager {unit} 2>&1 | tail -1").stdout.strip()
            m = re.search(r"Overall exposure level for \S+: ([\d.]+) (\S+)", out)
            exposure.append(f"{unit.removesuffix('.service')} {m.group(1)} {m.group(2)}" if m else f"{unit} ?")
        self.record("systemd-analyze security (distro units the roles configure; 0 = best, 10 = worst)", None,
                    "; ".join(exposure))  # fmt: skip

    # ------------------------------------------------------------------ PostgreSQL, the service user, secret files
    def postgres(self) -> None:
        listen = self.sh("ss -Hltn").stdout.split("\n")
        pg = [ln.split()[3] for ln in listen if ln.split()[3:4] and ln.split()[3].endswith(":5432")]
        non_lo = [ln.split()[3] for ln in listen if ln.split()[3:4] and not re.match(
            r"^(127\.\d+\.\d+\.\d+|\[::1\]):\d+$", ln.split()[3])]  # fmt: skip
        hba = self.sh("grep -hEv '^\\s*(#|$)' $(runuser -u postgres -- psql -XAtc 'SHOW hba_file' 2>/dev/null "
                      "|| echo /etc/postgresql/15/main/pg_hba.conf)", ).stdout  # fmt: skip
        hba_hosts = sorted({f.split()[3] for f in hba.splitlines() if f.split()[:1] in (["host"], ["hostssl"])})
        hba_methods = sorted({f.split()[-1] for f in hba.splitlines() if f.split()[:1] in (["host"], ["hostssl"])})
        scram = self.sh("cd / && runuser -u postgres -- psql -XAtc \"SELECT rolname || ':' || left(rolpassword, 13) "
                        "FROM pg_authid WHERE rolpassword IS NOT NULL\"").stdout.split()  # fmt: skip
        addr = self.stage.droplet.address
        t = time.monotonic()
        try:
            with socket.create_connection((addr, 5432), timeout=5):
                outside = "CONNECTED"
        except OSError as exc:
            outside = f"{type(exc).__name__} after {time.monotonic() - t:.1f} s"
        ok = bool(pg) and all(a.startswith(("127.", "[::1]")) for a in pg) and outside != "CONNECTED"
        self.record("PostgreSQL on loopback only", ok,
                    f"listens on {', '.join(pg) or 'nothing'}; from this machine to {addr}:5432: {outside}; "
                    f"pg_hba host lines for {', '.join(hba_hosts) or 'none'} ({', '.join(hba_methods)}); "
                    f"stored passwords: {', '.join(scram) or 'none'}")  # fmt: skip
        self.record("listening sockets on non-loopback addresses", all(a.endswith(":22") for a in non_lo),
                    ", ".join(sorted(set(non_lo))) or "none")

    def service_user(self) -> None:
        ident = self.sh(f"id {USER}; getent passwd {USER} | cut -d: -f7").stdout.split("\n")
        listing = self.sh(f"sudo -n -l -U {USER} 2>&1").stdout.strip()
        try_sudo = self.sh(f"runuser -u {USER} -- sudo -n true 2>&1; echo rc=$?").stdout.strip()
        sudo_ok = "not allowed" in listing and not try_sudo.endswith("rc=0")
        in_groups = re.findall(r"\((sudo|adm|root|wheel|disk|shadow|systemd-journal)\)", ident[0])
        self.record("service user cannot sudo", sudo_ok and not in_groups,
                    f"`sudo -l -U {USER}`: {listing.splitlines()[-1] if listing else '?'}; `sudo -n true` as "
                    f"{USER}: {try_sudo.splitlines()[-1]} ({try_sudo.splitlines()[0][:80]}); {ident[0]}; "
                    f"shell {ident[1] if len(ident) > 1 else '?'}")  # fmt: skip
        files = ["/root/.ssh/authorized_keys", "/etc/shadow", "/etc/ssh/ssh_host_ed25519_key", "/root",
                 "/var/lib/postgresql/15/main"]  # fmt: skip
        results = []
        readable = []
        for f in files:
            verb = "ls" if f in ("/root", "/var/lib/postgresql/15/main") else "cat"
            r = self.sh(f"runuser -u {USER} -- {verb} {f} >/dev/null 2>&1 && echo READABLE || echo denied").stdout
            results.append(f"{verb} {f}: {r.strip()}")
            if r.strip() == "READABLE":
                readable.append(f)
        self.record("service user cannot read root's files", not readable, "; ".join(results))

    def secret_files(self) -> None:
        got = []
        bad = []
        for path, (mode, owner, group) in EXPECTED_MODES.items():
            st = self.sh(f"stat -c '%a %U %G' {path}").stdout.strip()
            got.append(f"{path} {st}")
            if st != f"{mode} {owner} {group}":
                bad.append(f"{path} is {st}, expected {mode} {owner} {group}")
        self.record("secret files at their modes", not bad, "; ".join(bad or got))
        holders = self.grep_files(SCAN_TREES, "--exclude-dir=lynis")
        modes = [self.sh(f"stat -c '%n %a %U:%G' {shlex.quote(h)}").stdout.strip() for h in holders]
        # A file beside the expected one is a defect when anyone but root and the service user can read it.
        extra = [m for m in modes if m.split()[0] not in SECRET_FILES]
        self.record("files holding a vault value (whole droplet: " + SCAN_TREES + ")", not extra,
                    "; ".join(modes) or "none")  # fmt: skip

    # ------------------------------------------------------------------ secrets in what people read
    def ps_during_a_session(self) -> None:
        """`ps` snapshots (every process's command line, and the agent's environment) while a session trades."""
        snaps: list[str] = []
        done = threading.Event()

        def snap() -> None:
            while not done.is_set():
                out = self.sh("ps -eww -o user=,pid=,args=; for p in $(pgrep -u catalyst); do "
                              "tr '\\0' '\\n' < /proc/$p/environ 2>/dev/null; done", timeout=60).stdout  # fmt: skip
                snaps.append(out)
                time.sleep(0.2)

        thread = threading.Thread(target=snap, daemon=True)
        thread.start()
        res = self.stage.trade(lambda m: None, sessions=1)
        done.set()
        thread.join(timeout=60)
        joined = "\n".join(snaps)
        seen = sum(" run --advance-sim" in s for s in snaps)
        pg_backends = sum(s.count("catalyst_user") for s in snaps)
        leaks = self.found_in(joined)
        self.record("no secret in `ps` during a trading session", not leaks and seen > 0 and res.returncode == 0,
                    f"{len(snaps)} snapshots ({seen} with the agent running, {pg_backends} agent database backends "
                    f"seen); session exit {res.returncode}; vault values found: {', '.join(leaks) or 'none'}")

    def logs_reports_backups(self) -> None:
        st = self.stage
        report = st.catalyst("report", "daily", "--format", "text")
        html = st.catalyst("report", "daily", "--format", "html")
        backup = st.catalyst("backup", "run")
        drill = st.catalyst("backup", "verify", "--restore-drill")
        outputs = report.stdout + report.stderr + html.stdout + html.stderr + backup.stdout + backup.stderr + \
            drill.stdout + drill.stderr  # fmt: skip
        self.record("commands ran (report daily text+html, backup run, backup verify --restore-drill)",
                    all(r.returncode == 0 for r in (report, html, backup, drill)),
                    f"exit {report.returncode}, {html.returncode}, {backup.returncode}, {drill.returncode}")
        # logs
        log_files = self.grep_files("/var/log")
        journal = self.sh("journalctl --no-pager -o export 2>/dev/null", timeout=300).stdout
        leaks_j = self.found_in(journal)
        n_log = self.sh("find /var/log -type f | wc -l").stdout.strip()
        self.record("no secret in the logs (/var/log, the journal)", not log_files and not leaks_j,
                    f"{n_log} files under /var/log ({', '.join(log_files) or 'none'} hold a vault value); "
                    f"journal {len(journal) // 1024} KiB: {', '.join(leaks_j) or 'none'}")
        # reports
        report_files = self.sh("find /var/lib/catalyst/reports -type f | wc -l").stdout.strip()
        rep = self.grep_files("/var/lib/catalyst/reports")
        leaks_o = self.found_in(outputs)
        self.record("no secret in the reports", not rep and not leaks_o,
                    f"{report_files} files in /var/lib/catalyst/reports ({', '.join(rep) or 'none'} hold a vault "
                    f"value); command output: {', '.join(leaks_o) or 'none'}")  # fmt: skip
        # backups: their directory and state files, and the dumps' contents as pg_restore prints them
        bfiles = self.grep_files("/var/backups/catalyst /var/lib/catalyst/last-backup.json")
        dumps = self.sh("for f in /var/backups/catalyst/*.dump; do pg_restore -f - \"$f\"; done 2>/dev/null",
                        timeout=300).stdout  # fmt: skip
        n_dumps = self.sh("ls /var/backups/catalyst/*.dump | wc -l").stdout.strip()
        leaks_d = self.found_in(dumps)
        self.record("no secret in the backups or their logs", not bfiles and not leaks_d,
                    f"{n_dumps} dumps ({len(dumps) // 1024} KiB as SQL): {', '.join(leaks_d) or 'none'}; files "
                    f"under /var/backups/catalyst and last-backup.json: {', '.join(bfiles) or 'none'}")
        db = self.sh(f"cd / && runuser -u postgres -- pg_dump -d {DB} 2>/dev/null", timeout=300).stdout
        leaks_db = self.found_in(db)
        self.record("no secret in the database", not leaks_db and len(db) > 1000,
                    f"pg_dump {len(db) // 1024} KiB: {', '.join(leaks_db) or 'none'}")
        # the ping URLs are secrets too (roles/monitoring): not in logs, reports or backups
        urls = self.sh(f"grep -rlaF -e {' -e '.join(shlex.quote(u) for u in self.ping_urls)} /var/log "
                       f"/var/lib/catalyst /var/backups/catalyst 2>/dev/null || true").stdout.split()  # fmt: skip
        self.record("no healthchecks ping URL in logs, reports or backups", not urls and not any(
            u in journal or u in dumps for u in self.ping_urls), ", ".join(urls) or "none")  # fmt: skip

    def playbooks(self) -> None:
        for name in ("health", "backup", "report"):
            run = self.fleet.pyinfra(f"{name}.py") if self.tool == "pyinfra" else self.fleet.ansible(f"{name}.yml")
            if run.rc != 0:
                self.record(run.label, False, f"exit {run.rc}: {run.output[-300:]}")
        fetched = "".join(p.read_text(errors="replace") for p in self.fleet.fetch_dir.rglob("*") if p.is_file())
        outputs = {r.label: r.output for r in self.fleet.runs}
        leaks = {label: self.found_in(out) for label, out in outputs.items()}
        bad = {k: v for k, v in leaks.items() if v}
        self.record(f"no secret in playbook output ({self.tool}: site, health, backup, report) or the "
                    "fetched reports", not bad and not self.found_in(fetched),
                    f"{len(outputs)} runs, {sum(len(o) for o in outputs.values()) // 1024} KiB of output, exit "
                    f"{', '.join(str(r.rc) for r in self.fleet.runs)}; fetched {len(fetched) // 1024} KiB; "
                    f"found: {bad or 'none'}; in the fetched files: {', '.join(self.found_in(fetched)) or 'none'}")

    def table(self) -> str:
        lines = ["| check | measured | result |", "|---|---|---|"]
        for c in self.checks:
            lines.append(f"| {c.name} | {c.measured.replace('|', '/')} | {c.status} |")
        return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tool", choices=("pyinfra", "ansible"), default="pyinfra",
                    help="provision (and run the operational playbooks) with this tool (default pyinfra)")
    args = ap.parse_args()
    started = time.monotonic()
    build_wheelhouse(say)
    quiet = lambda msg: None  # noqa: E731 - the provisioning tool's own lines are not needed here
    with Fleet(1, say=quiet) as fleet:
        stage = fleet[0]
        say(f"droplet {stage.name} up; provisioning with {args.tool}")
        prov = fleet.pyinfra("site.py") if args.tool == "pyinfra" else fleet.ansible("site.yml")
        assert prov.rc == 0, prov.output[-4000:]
        say(f"provisioned in {prov.seconds:.1f}s")
        audit = Audit(fleet, stage, args.tool)
        say(f"{len(audit.secrets)} vault values to look for")
        audit.lynis()  # first, on the droplet as provisioning left it (as benchmarks/bench_droplet.py measures it)
        audit.login_defs()
        audit.secret_files()
        audit.service_user()
        audit.postgres()
        audit.systemd_units()
        audit.ps_during_a_session()
        audit.logs_reports_backups()
        audit.playbooks()
        audit.sshd_auth()
        audit.ssh_audit()
        still = stage.ssh("true", check=False).returncode
        audit.record("this machine can still log in after the audit (fail2ban did not ban it)", still == 0,
                     f"ssh exit {still}")
    wall = time.monotonic() - started
    print("\n" + audit.table())
    failed = [c.name for c in audit.checks if c.status == "FAIL"]
    print(f"\n{len(audit.checks)} checks: {sum(c.status == 'PASS' for c in audit.checks)} pass, {len(failed)} fail, "
          f"{sum(c.status == 'INFO' for c in audit.checks)} info; wall time {wall / 60:.1f} min")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
