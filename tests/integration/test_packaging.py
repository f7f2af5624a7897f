"""The Debian package and the systemd service: `scripts/package` builds a .deb whose contents, control
files and unit are what an operator installs; the packaged binary runs the packaged example config
(made real with `pki bootstrap`) and speaks systemd's notify protocol: READY=1 once its listeners are
bound, RELOADING=1 and READY=1 around a SIGHUP reload, STOPPING=1 on SIGTERM."""
import os
import re
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from harness import BIN, free_port_block, run

REPO = Path(os.environ.get("BULWARK_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BUILD = Path(os.environ.get("BULWARK_BUILD_DIR", REPO / "build"))


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    out = tmp_path_factory.mktemp("package")
    result = subprocess.run([str(REPO / "scripts/package")], env={**os.environ, "BUILD_DIR": str(BUILD), "OUT": str(out)},
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    debs = list(out.glob("bulwark_*.deb"))
    assert len(debs) == 1, debs
    root = out / "root"
    run("dpkg-deb", "-x", debs[0], root)
    control = out / "control"
    run("dpkg-deb", "-e", debs[0], control)
    return debs[0], root, control


def test_the_package_holds_the_binary_unit_config_and_maintainer_scripts(package):
    deb, root, control = package
    info = run("dpkg-deb", "-I", deb).stdout
    assert re.search(r"^ Package: bulwark$", info, re.M)
    depends = re.search(r"^ Depends: (.*)$", info, re.M).group(1)
    assert "libssl3" in depends and "adduser" in depends, depends
    for path in ("usr/bin/bulwark", "usr/lib/systemd/system/bulwark.service", "etc/bulwark/server.properties.example",
                 "usr/share/doc/bulwark/README.md"):
        assert (root / path).is_file(), path
    assert run(root / "usr/bin/bulwark", "--version").stdout.startswith("bulwark ")
    assert (control / "conffiles").read_text().split() == ["/etc/bulwark/server.properties.example"]
    for script in ("postinst", "prerm", "postrm"):
        assert os.access(control / script, os.X_OK), script
        run("sh", "-n", control / script)
    postinst = (control / "postinst").read_text()
    assert "adduser --system --group" in postinst and "install -d -o bulwark -g bulwark -m 0750 /var/lib/bulwark" in postinst


def test_the_unit_is_notify_reloads_with_sighup_and_is_hardened(package):
    _, root, _ = package
    unit = (root / "usr/lib/systemd/system/bulwark.service").read_text()
    settings = dict(line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith("#"))
    assert settings["Type"] == "notify"
    assert settings["ExecStart"] == "/usr/bin/bulwark broker -c /etc/bulwark/server.properties"
    assert settings["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert int(settings["LimitNOFILE"]) >= 65536
    assert settings["User"] == "bulwark" and settings["NoNewPrivileges"] == "yes"
    assert settings["ProtectSystem"] == "strict" and settings["ReadWritePaths"] == "/var/lib/bulwark"
    if subprocess.run(["sh", "-c", "command -v systemd-analyze"], capture_output=True).returncode == 0:
        result = subprocess.run(["systemd-analyze", "verify", "--man=no", str(root / "usr/lib/systemd/system/bulwark.service")],
                                capture_output=True, text=True)
        # Outside a booted systemd the binary path and user may be missing; syntax errors are what count.
        assert "Unknown key" not in result.stderr and "Invalid" not in result.stderr, result.stderr


def test_the_package_installs_and_its_unit_verifies(package):
    """As root (CI's fresh machine): dpkg installs it, the maintainer script makes the user and the data
    dir, systemd-analyze verifies the installed unit, and purging takes the user away again."""
    deb, _, _ = package
    if os.geteuid() != 0 or subprocess.run(["sh", "-c", "command -v systemd-analyze"], capture_output=True).returncode:
        pytest.skip("needs root and systemd-analyze")
    if subprocess.run(["dpkg-query", "-W", "bulwark"], capture_output=True).returncode == 0:
        pytest.skip("a bulwark package is already installed on this machine; not touching it")
    run("dpkg", "-i", deb)
    try:
        assert run("/usr/bin/bulwark", "--version").stdout.startswith("bulwark ")
        assert run("getent", "passwd", "bulwark").stdout.split(":")[6].strip() == "/usr/sbin/nologin"
        data = Path("/var/lib/bulwark")
        assert data.is_dir() and data.stat().st_mode & 0o777 == 0o750
        assert run("stat", "-c", "%U", data).stdout.strip() == "bulwark"
        verify = subprocess.run(["systemd-analyze", "verify", "--man=no", "/usr/lib/systemd/system/bulwark.service"],
                                capture_output=True, text=True)
        assert verify.returncode == 0, verify.stdout + verify.stderr
    finally:
        subprocess.run(["dpkg", "--purge", "bulwark"], capture_output=True)
    assert subprocess.run(["getent", "passwd", "bulwark"], capture_output=True).returncode != 0
    assert not Path("/usr/bin/bulwark").exists()


def example_config(root, tmp_path):
    """The packaged example, pointed at keystores `pki bootstrap` made and at free loopback ports."""
    pki = tmp_path / "pki"
    run(BIN, "pki", "bootstrap", "--dir", pki, "--broker", "kafka-1=localhost,127.0.0.1", "--client", "admin-1",
        "--format", "pkcs12")
    password = (pki / "bootstrap.password").read_text().strip()
    client = free_port_block(range(2))
    controller = client + 1
    text = (root / "etc/bulwark/server.properties.example").read_text()
    text = (text.replace("/etc/bulwark/tls/", f"{pki}/export/kafka-1/").replace("CHANGE-ME", password)
            .replace("/var/lib/bulwark/data", str(tmp_path / "data")).replace("kafka-1.example.com", "127.0.0.1")
            .replace("0.0.0.0:9092", f"127.0.0.1:{client}").replace("0.0.0.0:9093", f"127.0.0.1:{controller}")
            .replace(":9092", f":{client}").replace(":9093", f":{controller}"))
    config = tmp_path / "server.properties"
    config.write_text(text)
    return config, client


def receive(sock):
    sock.settimeout(60)
    return sock.recv(4096).decode()


def test_the_packaged_broker_runs_the_example_and_speaks_sd_notify(package, tmp_path):
    _, root, _ = package
    binary = root / "usr/bin/bulwark"
    config, port = example_config(root, tmp_path)
    cluster_id = run(binary, "storage", "random-uuid").stdout.strip()
    run(binary, "storage", "format", "-t", cluster_id, "-c", config)
    notify_path = tmp_path / "notify.sock"
    manager = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    manager.bind(str(notify_path))
    log = open(tmp_path / "broker.log", "wb")
    proc = subprocess.Popen([str(binary), "broker", "-c", str(config)], stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "NOTIFY_SOCKET": str(notify_path)})
    try:
        ready = receive(manager)
        assert ready.startswith("READY=1"), ready
        socket.create_connection(("127.0.0.1", port), timeout=5).close()  # bound before READY=1
        proc.send_signal(signal.SIGHUP)
        reloading = receive(manager)
        assert reloading.startswith("RELOADING=1\nMONOTONIC_USEC="), reloading
        assert receive(manager).startswith("READY=1")
        assert "listener SSL: TLS material read again (SIGHUP)" in (tmp_path / "broker.log").read_text()
        proc.send_signal(signal.SIGTERM)
        assert receive(manager) == "STOPPING=1"
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        manager.close()
        log.close()
