"""The shared testinfra checks, run against every provisioned droplet (after Ansible and after pyinfra) by
tests/droplet/test_provision.py:

    .venv/bin/pytest tests/droplet/testinfra_suite.py --hosts=ssh://NAME --ssh-config=RUN_DIR/ssh_config

Not collected by a plain ``pytest`` run (the name does not start with ``test_``). One section per role, each
headed ``# --- <role> ---``; engineers append their role's section. Never print a secret: check names, modes
and owners of secrets.env, never its values.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.droplet

SERVICE_USER = "catalyst"
DEV_SEC_CIPHERS = (
    "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr"
)
DEV_SEC_KEX = "sntrup761x25519-sha512@openssh.com,curve25519-sha256@libssh.org,diffie-hellman-group-exchange-sha256"
DEV_SEC_MACS = (
    "hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-512,hmac-sha2-256"
)


def _in_container(host) -> bool:  # type: ignore[no-untyped-def]
    return host.run("systemd-detect-virt --container").stdout.strip() == "systemd-nspawn"


# --- base ---


@pytest.mark.parametrize(
    "package",
    ["ca-certificates", "fail2ban", "nftables", "openssh-server", "python3-systemd", "systemd-timesyncd", "tzdata",
     "unattended-upgrades"],
)  # fmt: skip
def test_base_package_installed(host, package) -> None:  # type: ignore[no-untyped-def]
    assert host.package(package).is_installed


def test_base_timezone_is_new_york(host) -> None:  # type: ignore[no-untyped-def]
    assert host.file("/etc/timezone").content_string == "America/New_York\n"
    assert host.file("/etc/localtime").linked_to == "/usr/share/zoneinfo/America/New_York"
    assert host.check_output("date +%Z") in ("EST", "EDT")


def test_base_time_sync_enabled(host) -> None:  # type: ignore[no-untyped-def]
    timesyncd = host.service("systemd-timesyncd")
    assert timesyncd.is_enabled
    if not _in_container(host):  # the unit's ConditionVirtualization=!container skips it in the test droplet
        assert timesyncd.is_running


def test_base_sshd_hardened_and_valid(host) -> None:  # type: ignore[no-untyped-def]
    assert host.service("ssh").is_running
    assert host.run("sshd -t").rc == 0
    effective = dict(line.split(" ", 1) for line in host.check_output("sshd -T").splitlines() if " " in line)
    assert effective["permitrootlogin"] == "without-password"  # = prohibit-password
    assert effective["passwordauthentication"] == "no"
    assert effective["kbdinteractiveauthentication"] == "no"
    assert effective["permitemptypasswords"] == "no"
    assert effective["x11forwarding"] == "no"
    assert effective["ciphers"] == DEV_SEC_CIPHERS
    assert effective["kexalgorithms"] == DEV_SEC_KEX
    assert effective["macs"] == DEV_SEC_MACS
    assert host.file("/etc/ssh/sshd_config").mode == 0o644


def test_base_sysctl_hardening_applied(host) -> None:  # type: ignore[no-untyped-def]
    expected = {
        "net.ipv4.ip_forward": 0,
        "net.ipv4.tcp_syncookies": 1,
        "net.ipv4.conf.all.accept_redirects": 0,
        "net.ipv4.conf.all.send_redirects": 0,
        "net.ipv4.conf.all.rp_filter": 1,
        "net.ipv4.conf.all.log_martians": 1,
        "net.ipv6.conf.all.accept_redirects": 0,
    }
    if not _in_container(host):
        expected |= {"kernel.randomize_va_space": 2, "kernel.kptr_restrict": 2, "fs.suid_dumpable": 0}
    for key, value in expected.items():
        assert host.sysctl(key) == value, key
    conf = host.file("/etc/sysctl.d/90-catalyst-hardening.conf").content_string
    assert "net.ipv4.tcp_syncookies = 1" in conf
    has_kernel_keys = any(line.startswith(("kernel.", "fs.", "vm.")) for line in conf.splitlines())
    assert has_kernel_keys != _in_container(host)  # a container cannot set them: they are left out


def test_base_firewall_default_deny_except_ssh(host) -> None:  # type: ignore[no-untyped-def]
    nft = host.service("nftables")
    assert nft.is_enabled and nft.is_running
    assert host.run("nft -c -f /etc/nftables.conf").rc == 0
    chain = host.check_output("nft list chain inet catalyst input")
    assert "policy drop;" in chain
    assert "tcp dport 22 ct state new accept" in chain
    assert "limit rate over 60/minute burst 120 packets" in chain  # per-source SSH rate limit
    accepts = [ln.strip() for ln in chain.splitlines() if ln.strip().endswith("accept")]
    assert not [a for a in accepts if "dport" in a and "dport 22 " not in a], accepts  # nothing else open
    assert "policy drop;" in host.check_output("nft list chain inet catalyst forward")


def test_base_fail2ban_guards_sshd(host) -> None:  # type: ignore[no-untyped-def]
    f2b = host.service("fail2ban")
    assert f2b.is_enabled and f2b.is_running
    status = host.check_output("fail2ban-client status sshd")
    assert "_SYSTEMD_UNIT=ssh.service" in status


def test_base_unattended_upgrades_on(host) -> None:  # type: ignore[no-untyped-def]
    dump = host.check_output("apt-config dump APT::Periodic")
    assert 'APT::Periodic::Unattended-Upgrade "1";' in dump
    assert 'APT::Periodic::Update-Package-Lists "1";' in dump
    assert 'Unattended-Upgrade::Automatic-Reboot "false";' in host.check_output("apt-config dump Unattended-Upgrade")


def test_base_login_policy_set_once_per_key(host) -> None:  # type: ignore[no-untyped-def]
    """Each login.defs policy key appears exactly once, with the role's value (no distro line left beside it)."""
    want = {"UMASK": "027", "PASS_MAX_DAYS": "365", "PASS_MIN_DAYS": "1", "SHA_CRYPT_MIN_ROUNDS": "5000",
            "SHA_CRYPT_MAX_ROUNDS": "10000"}  # fmt: skip
    lines = [ln.split() for ln in host.file("/etc/login.defs").content_string.splitlines()]
    for key, value in want.items():
        assert [ln[1:] for ln in lines if ln and ln[0] == key] == [[value]], key


def test_base_service_user_has_no_login_and_no_sudo(host) -> None:  # type: ignore[no-untyped-def]
    user = host.user(SERVICE_USER)
    assert user.exists
    assert user.shell == "/usr/sbin/nologin"
    assert user.group == SERVICE_USER
    assert user.groups == [SERVICE_USER]
    assert user.uid < 1000  # a system account
    assert not host.file(f"/etc/sudoers.d/{SERVICE_USER}").exists
    assert "not allowed" in host.check_output(f"sudo -l -U {SERVICE_USER}")


@pytest.mark.parametrize(
    ("path", "owner", "group"),
    [("/etc/catalyst", "root", SERVICE_USER), ("/var/lib/catalyst", SERVICE_USER, SERVICE_USER),
     ("/var/lib/catalyst/reports", SERVICE_USER, SERVICE_USER), ("/var/log/catalyst", SERVICE_USER, SERVICE_USER)],
)  # fmt: skip
def test_base_directories(host, path, owner, group) -> None:  # type: ignore[no-untyped-def]
    d = host.file(path)
    assert d.is_directory
    assert (d.user, d.group, d.mode) == (owner, group, 0o750)


# --- secrets ---


def _keys(host, path: str) -> list[str]:  # type: ignore[no-untyped-def]
    """The variable names of an env file (values never leave the droplet)."""
    out = host.check_output(f"sed -n 's/^\\([A-Z_][A-Z0-9_]*\\)=.*/\\1/p' {path}")
    return out.split()


def test_secrets_settings_file(host) -> None:  # type: ignore[no-untyped-def]
    f = host.file("/etc/catalyst/catalyst.env")
    assert (f.user, f.group, f.mode) == ("root", SERVICE_USER, 0o640)
    keys = _keys(host, "/etc/catalyst/catalyst.env")
    for key in ("ALPACA_MODE", "ALPACA_BASE_URL", "ALPACA_LIVE_BASE_URL", "LIVE_ACCOUNT_SIZE", "CATALYST_LOG_FILE",
                "CATALYST_STATE_DIR", "CATALYST_REPORT_DIR", "CATALYST_STRATEGY", "CATALYST_CLOCK_SKEW_MAX",
                "CATALYST_CYCLE_MINUTES", "CATALYST_HEARTBEAT_TIMEOUT", "HC_API_URL"):  # fmt: skip
        assert key in keys
    assert not {"ALPACA_API_KEY", "ALPACA_SECRET_KEY", "DATABASE_URL"} & set(keys)
    assert "ALPACA_MODE=paper" in f.content_string.splitlines()  # provisioning is paper mode


def test_secrets_file_is_private_to_the_service_user(host) -> None:  # type: ignore[no-untyped-def]
    path = "/etc/catalyst/secrets.env"
    f = host.file(path)  # we log in as root
    assert (f.user, f.group, f.mode) == (SERVICE_USER, SERVICE_USER, 0o400)
    keys = _keys(host, path)
    assert {"ALPACA_API_KEY", "ALPACA_SECRET_KEY", "DATABASE_URL"} <= set(keys)
    assert set(keys) <= {"ALPACA_API_KEY", "ALPACA_SECRET_KEY", "ALPACA_PAPER_API_KEY", "ALPACA_LIVE_API_KEY",
                         "ALPACA_LIVE_SECRET_KEY", "DATABASE_URL", "HC_API_KEY", "HC_PING_CYCLE", "HC_PING_RISK",
                         "HC_PING_BACKUP", "HC_PING_REPORT"}  # fmt: skip
    assert host.run(f"runuser -u {SERVICE_USER} -- test -r {path}").rc == 0
    assert host.run(f"runuser -u nobody -- test -r {path}").rc != 0
    db = host.run(f"sed -n 's/^DATABASE_URL=\"\\(postgresql:\\/\\/[^:]*\\):.*@\\(.*\\)\"$/\\1 \\2/p' {path}")
    assert db.stdout.split()[0] == "postgresql://catalyst_user"


# --- schedule ---
# The service user's crontab holds each marked Catalyst job, enabled, under flock, output to cron.log;
# both tools write the very lines ansible.builtin.cron writes (roles/schedule/crontab.py).
_CATALYST_JOBS = {
    "catalyst: cycle 09:30-09:59": (r"30-59/[0-9]+ 9 \* \* 1-5", "cycle", "cycle"),
    "catalyst: cycle 10:00-15:59": (r"\*/[0-9]+ 10-15 \* \* 1-5", "cycle", "cycle"),
    "catalyst: routine morning": (r"30 8 \* \* 1-5", "routine", "routine morning"),
    "catalyst: routine evening": (r"30 16 \* \* 1-5", "routine", "routine evening"),
    "catalyst: evaluate": (r"45 16 \* \* 1-5", "evaluate", "evaluate"),
    "catalyst: backup run": (r"0 17 \* \* \*", "backup", "backup run"),
    "catalyst: backup restore drill": (r"0 6 \* \* 0", "backup", "backup verify --restore-drill"),
}


def _catalyst_crontab(host) -> list[str]:  # type: ignore[no-untyped-def]
    out = host.run("crontab -u catalyst -l")
    assert out.rc == 0, f"no crontab for catalyst: {out.stderr}"
    from roles.schedule.crontab import read_lines

    return read_lines(out.stdout)


def test_schedule_crontab_has_every_marked_job_under_flock(host) -> None:  # type: ignore[no-untyped-def]
    import re

    lines = _catalyst_crontab(host)
    for name, (when, lock, command) in _CATALYST_JOBS.items():
        mark = f"#Ansible: {name}"
        assert lines.count(mark) == 1, f"{mark!r} appears {lines.count(mark)} times in catalyst's crontab"
        job = lines[lines.index(mark) + 1]
        pattern = (rf"{when} flock -n /var/lib/catalyst/locks/{lock}\.lock /usr/local/bin/catalyst "
                   rf"{re.escape(command)} >> /var/log/catalyst/cron\.log 2>&1")  # fmt: skip
        assert re.fullmatch(pattern, job), f"{name}: unexpected (or disabled) job line {job!r}"


def test_schedule_cycle_cadence_matches_catalyst_cycle_minutes(host) -> None:  # type: ignore[no-untyped-def]
    env = host.file("/etc/catalyst/catalyst.env").content_string
    minutes = dict(ln.split("=", 1) for ln in env.splitlines() if ln.startswith("CATALYST_CYCLE_MINUTES="))
    n = minutes.get("CATALYST_CYCLE_MINUTES", "1").strip('"')
    lines = _catalyst_crontab(host)
    assert lines[lines.index("#Ansible: catalyst: cycle 09:30-09:59") + 1].startswith(f"30-59/{n} 9 ")
    assert lines[lines.index("#Ansible: catalyst: cycle 10:00-15:59") + 1].startswith(f"*/{n} 10-15 ")


def test_schedule_cron_runs_with_the_lock_directory(host) -> None:  # type: ignore[no-untyped-def]
    assert host.service("cron").is_running
    assert host.service("cron").is_enabled
    locks = host.file("/var/lib/catalyst/locks")
    assert locks.is_directory and locks.user == "catalyst" and locks.group == "catalyst" and locks.mode == 0o750
    assert host.exists("flock")


# --- backups ---
# The backup directory, the client tools, and "a backup that exists and verifies" on the droplet itself.


def test_backups_directory_is_private_to_the_service_user(host) -> None:  # type: ignore[no-untyped-def]
    d = host.file("/var/backups/catalyst")
    assert d.is_directory
    assert d.user == "catalyst" and d.group == "catalyst"
    assert d.mode == 0o700


def test_backups_client_tools_are_installed(host) -> None:  # type: ignore[no-untyped-def]
    assert host.package("postgresql-client").is_installed
    assert host.exists("pg_dump") and host.exists("pg_restore")


def test_backups_a_backup_runs_and_verifies(host) -> None:  # type: ignore[no-untyped-def]
    import json

    run = host.run("cd / && sudo -u catalyst /usr/local/bin/catalyst backup run")
    assert run.rc == 0, f"catalyst backup run failed (exit {run.rc}):\n{run.stdout}\n{run.stderr}"
    assert "pg_restore --list: ok" in run.stdout and "backup ok" in run.stdout
    state = json.loads(host.file("/var/lib/catalyst/last-backup.json").content_string)
    assert state["status"] == "ok" and state["verified"] is True and state["bytes"] > 0
    dump = host.file(state["path"])
    assert dump.exists and dump.user == "catalyst" and dump.mode == 0o600
    assert state["path"].startswith("/var/backups/catalyst/catalyst-") and state["path"].endswith(".dump")
    check = host.run(f"cd /var/backups/catalyst && sha256sum -c {state['path'].rsplit('/', 1)[1]}.sha256")
    assert check.rc == 0, check.stdout + check.stderr
    verify = host.run("cd / && sudo -u catalyst /usr/local/bin/catalyst backup verify")
    assert verify.rc == 0, f"catalyst backup verify failed (exit {verify.rc}):\n{verify.stdout}\n{verify.stderr}"
    assert "verify ok" in verify.stdout


def test_backups_restore_drill_works(host) -> None:  # type: ignore[no-untyped-def]
    # The weekly cron job; needs CREATEDB for catalyst_user (granted by the postgres role).
    if not host.file("/var/lib/catalyst/last-backup.json").exists:
        assert host.run("cd / && sudo -u catalyst /usr/local/bin/catalyst backup run").rc == 0
    drill = host.run("cd / && sudo -u catalyst /usr/local/bin/catalyst backup verify --restore-drill")
    assert drill.rc == 0, f"restore drill failed (exit {drill.rc}):\n{drill.stdout}\n{drill.stderr}"
    assert "row counts vs the dump" in drill.stdout and "dropped scratch database" in drill.stdout


# --- monitoring ---
# The ping URLs reach the agent through secrets.env; only the names of configured checks are ever read here.


def test_monitoring_ping_urls_load_in_the_agent(host) -> None:  # type: ignore[no-untyped-def]
    import json

    probe = ("import json; from catalyst.config import load_config; c = load_config(); "
             "print(json.dumps(sorted(k for k, v in c.hc_ping_urls.items() if v)))")  # fmt: skip
    out = host.run(f"cd / && sudo -u catalyst /opt/catalyst/venv/bin/python -c {probe!r}")
    assert out.rc == 0, f"the agent cannot load its configuration (exit {out.rc})"
    configured = json.loads(out.stdout)
    assert set(configured) <= {"cycle", "risk", "backup", "report"}
    names = host.run("grep -o '^HC_PING_[A-Z]*' /etc/catalyst/secrets.env").stdout.split()
    assert sorted(n.removeprefix("HC_PING_").lower() for n in names) == configured


# --- postgres ---
# Distro PostgreSQL 15 on loopback only, scram-sha-256, the agent's role and database. The vault password is
# never sent to the droplet from here: the stored SCRAM verifier is checked against it on this machine, and
# the TCP login uses the DATABASE_URL the agent itself reads.
_PG_UNIT = "postgresql@15-main"
_PG_ETC = "/etc/postgresql/15/main"


def _pg(host, sql: str) -> str:  # type: ignore[no-untyped-def]
    """Run SQL as the postgres superuser (peer on the socket); unaligned, tuples only."""
    import shlex

    return host.check_output(f"cd / && runuser -u postgres -- psql -X -A -t -v ON_ERROR_STOP=1 -c {shlex.quote(sql)}")


def _vault_db_password() -> str:
    import subprocess
    import sys
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[2]
    local = root / "inventory" / "local"
    out = subprocess.run(
        [str(Path(sys.executable).with_name("ansible-vault")), "view", "--vault-password-file",
         str(local / "vault-password"), str(local / "vault.yml")],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    data = yaml.safe_load(out)
    return str(data.get("postgres_catalyst_password") or data["postgres_password"])


def test_postgres_service_running(host) -> None:  # type: ignore[no-untyped-def]
    assert host.package("postgresql-15").is_installed
    pg = host.service(_PG_UNIT)
    assert pg.is_running and pg.is_enabled


def test_postgres_listens_on_loopback_only(host) -> None:  # type: ignore[no-untyped-def]
    assert host.socket("tcp://127.0.0.1:5432").is_listening
    assert host.socket("tcp://::1:5432").is_listening
    assert not host.socket("tcp://0.0.0.0:5432").is_listening
    assert not host.socket("tcp://:::5432").is_listening
    local = sorted(line.split()[3] for line in host.check_output("ss -H -l -t -n 'sport = :5432'").splitlines())
    assert local == ["127.0.0.1:5432", "[::1]:5432"], local


def test_postgres_hba_scram_for_host_lines_peer_for_local(host) -> None:  # type: ignore[no-untyped-def]
    f = host.file(f"{_PG_ETC}/pg_hba.conf")
    assert (f.user, f.group, f.mode) == ("postgres", "postgres", 0o640)
    rules = [ln.split() for ln in f.content_string.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    hosts = [r for r in rules if r[0].startswith("host")]
    assert hosts and all(r[0] == "host" and r[-1] == "scram-sha-256" for r in hosts), hosts
    assert all(r[3] in ("127.0.0.1/32", "::1/128") for r in hosts), hosts
    assert ["local", "all", "postgres", "peer"] in rules
    assert all(r[-1] == "peer" for r in rules if r[0] == "local")
    # what the server has loaded agrees, and the file has no error
    loaded = _pg(host, "SELECT type, auth_method, coalesce(error, '') FROM pg_hba_file_rules").splitlines()
    assert loaded and all(row.split("|")[2] == "" for row in loaded), loaded
    assert {row.split("|")[1] for row in loaded if row.startswith("host|")} == {"scram-sha-256"}
    assert _pg(host, "SHOW password_encryption") == "scram-sha-256"


def test_postgres_small_droplet_tuning(host) -> None:  # type: ignore[no-untyped-def]
    want = {"max_connections": "20", "shared_buffers": "128MB", "work_mem": "4MB", "effective_cache_size": "384MB",
            "listen_addresses": "127.0.0.1,::1"}  # fmt: skip
    for name, value in want.items():
        assert _pg(host, f"SHOW {name}") == value, name
    assert _pg(host, "SELECT count(*) FROM pg_settings WHERE pending_restart") == "0"


def test_postgres_catalyst_role_and_database(host) -> None:  # type: ignore[no-untyped-def]
    assert _pg(host, "SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = 'catalyst_user'") == "t|f"
    owner = _pg(host, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'catalyst_trading'")
    assert owner == "catalyst_user"
    settings = _pg(
        host,
        "SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole "
        "WHERE r.rolname = 'catalyst_user' AND s.setdatabase = 0",
    )
    assert "TimeZone=America/New_York" in settings.split(","), settings


def test_postgres_password_is_the_vault_one(host) -> None:  # type: ignore[no-untyped-def]
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "roles" / "postgres" / "files" / "set_password.py"
    spec = importlib.util.spec_from_file_location("catalyst_set_password", path)
    assert spec and spec.loader
    helper = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helper)
    verifier = _pg(host, "SELECT rolpassword FROM pg_authid WHERE rolname = 'catalyst_user'")
    assert verifier.startswith("SCRAM-SHA-256$4096:")
    ok = helper.matches(verifier, _vault_db_password().encode())
    assert ok, "catalyst_user's stored SCRAM verifier does not match the vault's password"  # no value shown


def test_postgres_catalyst_user_connects_over_tcp_with_its_password(host) -> None:  # type: ignore[no-untyped-def]
    probe = (
        "import psycopg; from catalyst.config import load_config; "
        "c = psycopg.connect(load_config().database_url.reveal(), connect_timeout=5); "
        "print(c.info.host, c.info.port, c.info.user, c.info.dbname, "
        "c.execute('SHOW timezone').fetchone()[0], c.execute('SELECT inet_client_addr()').fetchone()[0])"
    )
    out = host.run(f"cd / && runuser -u catalyst -- /opt/catalyst/venv/bin/python -c {probe!r}")
    assert out.rc == 0, "catalyst_user cannot log in over TCP with the DATABASE_URL from secrets.env"
    assert out.stdout.split() == ["127.0.0.1", "5432", "catalyst_user", "catalyst_trading", "America/New_York",
                                  "127.0.0.1"]  # fmt: skip


def test_postgres_catalyst_user_cannot_connect_without_the_password(host) -> None:  # type: ignore[no-untyped-def]
    for address in ("127.0.0.1", "::1"):
        psql = f"psql -X -w -h {address} -U catalyst_user -d catalyst_trading -c 'SELECT 1'"
        none = host.run(f"cd / && PGPASSFILE=/nonexistent {psql}")
        assert none.rc != 0 and "no password supplied" in none.stderr, none.stderr
        wrong = host.run(f"cd / && PGPASSFILE=/nonexistent PGPASSWORD=not-the-password {psql}")
        assert wrong.rc != 0 and "password authentication failed" in wrong.stderr, wrong.stderr


# --- agent ---
# The venv from the controller's wheelhouse, the catalyst command, migrations, log rotation.


def test_agent_runs_as_the_service_user(host) -> None:  # type: ignore[no-untyped-def]
    import tomllib
    from pathlib import Path

    version = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]["version"]
    link = host.file("/usr/local/bin/catalyst")
    assert link.is_symlink and link.linked_to == "/opt/catalyst/venv/bin/catalyst"
    for cmd in ("/opt/catalyst/venv/bin/catalyst", "catalyst"):
        out = host.run(f"cd / && runuser -u catalyst -- {cmd} --version")
        assert out.rc == 0, out.stderr
        assert out.stdout.strip() == f"catalyst, version {version}"


def test_agent_installed_from_the_wheelhouse(host) -> None:  # type: ignore[no-untyped-def]
    for d in ("/opt/catalyst", "/opt/catalyst/wheelhouse", "/opt/catalyst/venv"):
        f = host.file(d)
        assert f.is_directory and (f.user, f.group) == ("root", "root") and not f.mode & 0o022, d
    stamp = host.file("/opt/catalyst/venv/.catalyst-wheelhouse.sha256sums").content_string
    assert stamp == host.file("/opt/catalyst/wheelhouse/SHA256SUMS").content_string
    assert host.run("cd /opt/catalyst/wheelhouse && sha256sum --quiet -c SHA256SUMS").rc == 0
    # every pinned wheel is what the venv has, and the venv is consistent
    pins = host.file("/opt/catalyst/wheelhouse/requirements.txt").content_string.split()
    freeze = host.check_output("/opt/catalyst/venv/bin/pip freeze --all --disable-pip-version-check")
    norm = lambda s: s.lower().replace("_", "-")  # noqa: E731
    installed = {norm(line) for line in freeze.splitlines()}
    assert [p for p in pins if norm(p) not in installed] == []
    assert host.run("/opt/catalyst/venv/bin/pip check --disable-pip-version-check").rc == 0
    assert host.package("python3-venv").is_installed


def test_agent_migrations_up_to_date(host) -> None:  # type: ignore[no-untyped-def]
    out = host.run("cd / && runuser -u catalyst -- /opt/catalyst/venv/bin/catalyst db migrate")
    assert out.rc == 0, out.stderr
    assert out.stdout.strip() == "applied: nothing (up to date)"


def test_agent_logrotate_config(host) -> None:  # type: ignore[no-untyped-def]
    f = host.file("/etc/logrotate.d/catalyst")
    assert (f.user, f.group, f.mode) == ("root", "root", 0o644)
    words = f.content_string.split()
    assert "/var/log/catalyst/*.log" in words
    for directive in ("daily", "compress", "copytruncate", "missingok"):
        assert directive in words, directive
    assert words[words.index("rotate") + 1] == "14"
    check = host.run("logrotate -d /etc/logrotate.d/catalyst")
    assert check.rc == 0, check.stderr
    assert "error" not in (check.stdout + check.stderr).lower()
