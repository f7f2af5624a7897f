"""`bulwark pki acme issue|renew` against a real ACME server (Debian's pebble) on loopback, with DNS-01
answered both ways: an exec hook that feeds pebble-challtestsrv (pebble's DNS), and RFC 2136 updates
signed with TSIG to a real BIND (named) that pebble asks. The certificate is exported as a keystore,
served by a running broker, and renewed with re-export: the broker serves the new serial without a
restart (hot reload). Failures (a failing hook, a wrong TSIG secret) explain themselves and leave the
old certificate in place."""
import json
import os
import signal
import stat
import subprocess
from pathlib import Path

import pytest

from harness import BIN, PASSWORD, Broker, Pki, free_port_block, have, run, wait_for, wait_for_port

pytestmark = pytest.mark.skipif(not (have("pebble") and have("pebble-challtestsrv")),
                                reason="Debian's pebble package (pebble, pebble-challtestsrv) is not installed")


def served_serial(port):
    """The serial a new `openssl s_client` handshake sees."""
    hello = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost"],
                           input=b"", capture_output=True, timeout=20)
    out = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=hello.stdout, capture_output=True, timeout=20)
    return out.stdout.decode().strip().removeprefix("serial=")


def serial_of(path):
    return run("openssl", "x509", "-in", path, "-noout", "-serial").stdout.strip().removeprefix("serial=")


def pem_blocks(path):
    text = Path(path).read_text()
    return [b + "-----END CERTIFICATE-----\n" for b in text.split("-----END CERTIFICATE-----\n") if "BEGIN" in b]


def x509_field(pem, flag):
    return run("openssl", "x509", "-noout", flag, input=pem).stdout.strip()


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


class Processes:
    """The servers a test starts, terminated (only these) when it ends."""

    def __init__(self):
        self.procs = []

    def start(self, args, log, env=None):
        handle = open(log, "ab")
        proc = subprocess.Popen([str(a) for a in args], stdout=handle, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})})
        self.procs.append((proc, handle))
        return proc

    def stop_all(self):
        for proc, handle in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=15)
            handle.close()


@pytest.fixture
def processes():
    started = Processes()
    yield started
    started.stop_all()


def start_pebble(processes, root: Path, dns_server: str):
    """pebble with a TLS certificate of a test CA made here (the Debian package ships none); returns
    (directory URL, CA file for --server-ca)."""
    tls = root / "pebble-tls"
    tls.mkdir()
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", tls / "ca.key", "-out", tls / "ca.pem", "-days", "2", "-subj", "/CN=pebble test CA")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
        tls / "key.pem", "-out", tls / "server.csr", "-subj", "/CN=localhost")
    (tls / "ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("openssl", "x509", "-req", "-in", tls / "server.csr", "-CA", tls / "ca.pem", "-CAkey", tls / "ca.key",
        "-CAcreateserial", "-out", tls / "cert.pem", "-days", "2", "-extfile", tls / "ext")
    base = free_port_block([0, 1, 2, 3])
    config = {"pebble": {"listenAddress": f"127.0.0.1:{base}", "managementListenAddress": f"127.0.0.1:{base + 1}",
                         "certificate": str(tls / "cert.pem"), "privateKey": str(tls / "key.pem"),
                         "httpPort": base + 2, "tlsPort": base + 3, "ocspResponderURL": "",
                         "externalAccountBindingRequired": False}}
    (root / "pebble.json").write_text(json.dumps(config))
    # No sleeps in validation, a fresh authorization for every order (so renewals run the challenge
    # again), and 15% of good nonces refused as badNonce: the client must retry those.
    env = {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_AUTHZREUSE": "0", "PEBBLE_WFE_NONCEREJECT": "15"}
    proc = processes.start(["pebble", "-config", root / "pebble.json", "-dnsserver", dns_server], root / "pebble.log", env)
    wait_for_port(base, proc=proc)
    return f"https://127.0.0.1:{base}/dir", tls / "ca.pem"


def start_challtestsrv(processes, root: Path):
    """pebble-challtestsrv as pebble's DNS server; returns (dns "HOST:PORT", management port)."""
    base = free_port_block([0, 1])
    proc = processes.start(["pebble-challtestsrv", "-dns01", f"127.0.0.1:{base}", "-http01", "", "-https01", "",
                            "-tlsalpn01", "", "-management", f"127.0.0.1:{base + 1}"], root / "challtestsrv.log")
    wait_for_port(base + 1, proc=proc)
    return f"127.0.0.1:{base}", base + 1


def write_hook(root: Path, management_port: int, behaviour="ok"):
    """A lego-style exec hook that sets/clears the TXT record through challtestsrv's management API and
    logs each call (argv) to hook.log. behaviour "fail": `present` exits 3; "wrong": it publishes
    another value than asked."""
    hook = root / f"hook-{behaviour}.py"
    hook.write_text(f"""#!/usr/bin/python3
import json, sys, urllib.request
verb, fqdn, value = sys.argv[1:4]
with open({str(root / 'hook.log')!r}, "a") as log:
    log.write(f"{{verb}} {{fqdn}} {{value}}\\n")
if verb == "present" and {behaviour!r} == "fail":
    sys.exit(3)
if {behaviour!r} == "wrong":
    value = "not-the-key-authorization-digest"
body = {{"host": fqdn, "value": value}} if verb == "present" else {{"host": fqdn}}
path = "/set-txt" if verb == "present" else "/clear-txt"
urllib.request.urlopen(urllib.request.Request("http://127.0.0.1:{management_port}" + path,
                                              data=json.dumps(body).encode()), timeout=10).read()
""")
    hook.chmod(0o755)
    return hook


def acme_broker(tmp_path, keystore_type, keystore):
    """A harness broker whose SSL listener serves the ACME keystore (the other listeners keep the test
    PKI's, which their peers trust)."""
    pki = Pki(tmp_path, clients=())
    extra = {"listener.name.ssl.ssl.keystore.type": keystore_type,
             "listener.name.ssl.ssl.keystore.location": str(keystore),
             "listener.name.ssl.ssl.keystore.password": PASSWORD}
    return Broker(tmp_path, pki, extra=extra)


def check_stored(acme_dir, name, domains):
    issued = acme_dir / "issued" / name
    assert mode(issued / "key.pem") == 0o600
    chain = pem_blocks(issued / "chain.pem")
    assert len(chain) >= 2
    assert chain[0] == pem_blocks(issued / "cert.pem")[0]  # leaf first
    assert x509_field(chain[0], "-issuer").removeprefix("issuer=") == x509_field(chain[1], "-subject").removeprefix("subject=")
    sans = run("openssl", "x509", "-in", issued / "cert.pem", "-noout", "-ext", "subjectAltName").stdout
    for domain in domains:
        assert f"DNS:{domain}" in sans
    # The key matches the certificate.
    cert_pub = run("openssl", "x509", "-in", issued / "cert.pem", "-noout", "-pubkey").stdout
    key_pub = run("openssl", "pkey", "-in", issued / "key.pem", "-pubout").stdout
    assert cert_pub == key_pub
    accounts = list((acme_dir / "acme").glob("account-*.key"))
    assert len(accounts) == 1 and mode(accounts[0]) == 0o600
    assert mode(acme_dir / "acme") == 0o700
    state = json.loads((acme_dir / "state.json").read_text())
    assert [r["serial"] for r in state["issued"] if r["name"] == name] == [serial_of(issued / "cert.pem")]
    return chain


def test_exec_hook_issue_export_serve_and_hot_reload_after_renew(tmp_path, processes):
    dns, management = start_challtestsrv(processes, tmp_path)
    server, server_ca = start_pebble(processes, tmp_path, dns)
    hook = write_hook(tmp_path, management)
    acme_dir = tmp_path / "acme-pki"
    domains = ["kafka-1.example.test", "kafka-1-alt.example.test"]
    common = ["--dir", acme_dir, "--server-ca", server_ca]

    issued = run(BIN, "pki", "acme", "issue", "kafka-1", *common, "--server", server, "--domain", domains[0],
                 "--domain", domains[1], "--dns-hook", hook, "--email", "ops@example.test")
    assert "Issued kafka-1" in issued.stdout
    chain = check_stored(acme_dir, "kafka-1", domains)
    calls = (tmp_path / "hook.log").read_text().splitlines()
    for domain in domains:  # lego's contract: FQDN with its trailing dot, present before cleanup
        fqdn = f"_acme-challenge.{domain}."
        verbs = [line.split()[0] for line in calls if line.split()[1] == fqdn]
        assert verbs == ["present", "cleanup"], calls
    assert "BEGIN" not in issued.stdout + issued.stderr  # no key material in the output
    assert "kafka-1" in run(BIN, "pki", "list", "--dir", acme_dir).stdout
    # A second issue under the same name is refused without --force.
    again = run(BIN, "pki", "acme", "issue", "kafka-1", *common, "--server", server, "--domain", domains[0],
                "--dns-hook", hook, check=False)
    assert again.returncode == 1 and "already" in again.stderr

    # pki export works for it; the CA file is the top of the ACME chain.
    pem_out = tmp_path / "export-pem"
    run(BIN, "pki", "export", "kafka-1", "--dir", acme_dir, "--format", "pem", "--out", pem_out)
    assert pem_blocks(pem_out / "ca.pem")[-1] == chain[-1]
    assert pem_blocks(pem_out / "kafka-1.chain.pem") == chain
    keystores = tmp_path / "keystores"
    run(BIN, "pki", "export", "kafka-1", "--dir", acme_dir, "--format", "pkcs12", "--password", PASSWORD,
        "--out", keystores)
    keystore = keystores / "kafka-1.keystore.p12"
    old_serial = serial_of(acme_dir / "issued/kafka-1/cert.pem")

    broker = acme_broker(tmp_path, "PKCS12", keystore).start()
    try:
        port = broker.ports["SSL"]
        assert served_serial(port) == old_serial

        not_due = run(BIN, "pki", "acme", "renew", "kafka-1", *common, "--dns-hook", hook)
        assert "not due for renewal" in not_due.stdout
        assert serial_of(acme_dir / "issued/kafka-1/cert.pem") == old_serial

        # A failing hook: a clear error, the hook is still asked to clean up, nothing changes.
        failing = write_hook(tmp_path, management, "fail")
        before_bytes = keystore.read_bytes()
        failed = run(BIN, "pki", "acme", "renew", "kafka-1", *common, "--dns-hook", failing, "--force",
                     "--export-format", "pkcs12", "--export-out", keystores, "--password-file", pw_file(tmp_path),
                     check=False)
        assert failed.returncode == 1
        assert "exited with status 3" in failed.stderr and "present" in failed.stderr
        assert (tmp_path / "hook.log").read_text().splitlines()[-1].startswith("cleanup _acme-challenge.")
        assert serial_of(acme_dir / "issued/kafka-1/cert.pem") == old_serial
        assert keystore.read_bytes() == before_bytes

        # A hook that publishes the wrong value: the server's problem document is quoted.
        wrong = run(BIN, "pki", "acme", "renew", "kafka-1", *common, "--dns-hook", write_hook(tmp_path, management, "wrong"),
                    "--force", check=False)
        assert wrong.returncode == 1
        assert "the ACME server could not validate kafka-1" in wrong.stderr  # either domain, whichever came first
        assert "urn:ietf:params:acme:error:unauthorized" in wrong.stderr
        assert serial_of(acme_dir / "issued/kafka-1/cert.pem") == old_serial

        renewed = run(BIN, "pki", "acme", "renew", "kafka-1", *common, "--dns-hook", hook, "--force",
                      "--export-format", "pkcs12", "--export-out", keystores, "--password-file", pw_file(tmp_path))
        assert "Renewed kafka-1" in renewed.stdout and "Exported kafka-1" in renewed.stdout
        new_serial = serial_of(acme_dir / "issued/kafka-1/cert.pem")
        assert new_serial != old_serial
        state = json.loads((acme_dir / "state.json").read_text())
        assert state["issued"][0]["superseded"] == [old_serial]
        pid = broker.proc.pid
        wait_for("the renewed ACME certificate to be served", lambda: served_serial(port) == new_serial, timeout=20)
        assert broker.alive() and broker.proc.pid == pid  # hot reload, no restart
        assert f"replaced by serial {new_serial}" in broker.log_text()

        # --watch (with --force: renew at once, then check every interval) keeps the broker current
        # too, and stops cleanly on SIGTERM.
        watcher = subprocess.Popen([BIN, "pki", "acme", "renew", "kafka-1", *map(str, common), "--dns-hook", str(hook),
                                    "--force", "--watch", "--check-interval", "3600", "--export-format", "pkcs12",
                                    "--export-out", str(keystores), "--password-file", str(pw_file(tmp_path))],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for("--watch to renew", lambda: serial_of(acme_dir / "issued/kafka-1/cert.pem") != new_serial)
            watched_serial = serial_of(acme_dir / "issued/kafka-1/cert.pem")
            wait_for("the watched renewal to be served", lambda: served_serial(port) == watched_serial, timeout=20)
            assert watcher.poll() is None  # still watching
        finally:
            watcher.terminate()
            out, err = watcher.communicate(timeout=20)
        assert watcher.returncode == 0, err
        assert "Renewed kafka-1" in out
        assert broker.alive() and broker.proc.pid == pid
    finally:
        broker.stop()


def pw_file(root: Path):
    path = root / "store.password"
    path.write_text(PASSWORD + "\n")
    return path


def start_named(processes, root: Path, zone: str):
    """BIND as the authoritative server of `zone`, taking updates signed with a tsig-keygen key;
    returns ("127.0.0.1:PORT", key file, log file)."""
    work = root / "named"
    work.mkdir()
    key_file = work / "tsig.key"
    key_file.write_text(run("tsig-keygen", "-a", "hmac-sha256", "acme-update").stdout)
    (work / "zone.db").write_text(f"$TTL 60\n@ IN SOA ns.{zone}. admin.{zone}. 1 3600 600 86400 60\n"
                                  f"@ IN NS ns.{zone}.\nns IN A 127.0.0.1\n")
    port = free_port_block([0])
    (work / "named.conf").write_text(f"""include "{key_file}";
options {{
  directory "{work}";
  pid-file "{work}/named.pid";
  session-keyfile "{work}/session.key";
  listen-on port {port} {{ 127.0.0.1; }};
  listen-on-v6 {{ none; }};
  recursion no;
  dnssec-validation no;
}};
controls {{ }};
zone "{zone}" {{ type primary; file "{work}/zone.db"; allow-update {{ key "acme-update"; }}; }};
""")
    log = work / "named.log"
    proc = processes.start(["named", "-g", "-c", work / "named.conf"], log)
    wait_for_port(port, proc=proc)
    wait_for("named to load the zone", lambda: "all zones loaded" in log.read_text(errors="replace"))
    return f"127.0.0.1:{port}", key_file, log


@pytest.mark.skipif(not (have("named") and have("tsig-keygen")), reason="Debian's bind9 (named, tsig-keygen) is not installed")
def test_rfc2136_with_bind_issue_export_serve_and_hot_reload_after_renew(tmp_path, processes):
    dns, key_file, named_log = start_named(processes, tmp_path, "example.test")
    server, server_ca = start_pebble(processes, tmp_path, dns)
    acme_dir = tmp_path / "acme-pki"
    common = ["--dir", acme_dir, "--server-ca", server_ca, "--dns-rfc2136", dns]

    issued = run(BIN, "pki", "acme", "issue", "kafka-2", *common, "--tsig-key", key_file, "--server", server,
                 "--domain", "kafka-2.example.test")
    assert "Issued kafka-2" in issued.stdout
    check_stored(acme_dir, "kafka-2", ["kafka-2.example.test"])
    log = named_log.read_text(errors="replace")
    # The zone was found by SOA, the update was signed and accepted, and the record removed after.
    assert "signer \"acme-update\" approved" in log
    assert "adding an RR at '_acme-challenge.kafka-2.example.test' TXT" in log
    assert "deleting an RR at _acme-challenge.kafka-2.example.test TXT" in log
    secret = key_file.read_text().split('secret "')[1].split('"')[0]
    assert secret not in issued.stdout + issued.stderr  # the TSIG secret is never printed

    keystores = tmp_path / "keystores"
    run(BIN, "pki", "export", "kafka-2", "--dir", acme_dir, "--format", "jks", "--password", PASSWORD,
        "--out", keystores)
    keystore = keystores / "kafka-2.keystore.jks"
    old_serial = serial_of(acme_dir / "issued/kafka-2/cert.pem")
    broker = acme_broker(tmp_path, "JKS", keystore).start()
    try:
        port = broker.ports["SSL"]
        assert served_serial(port) == old_serial

        # A wrong TSIG secret: BIND refuses with BADSIG, said in plain words; nothing changes.
        wrong = tmp_path / "wrong.key"
        wrong.write_text(key_file.read_text().replace(secret, "A" * 43 + "="))
        before_bytes = keystore.read_bytes()
        failed = run(BIN, "pki", "acme", "renew", "kafka-2", *common, "--tsig-key", wrong, "--force",
                     "--export-format", "jks", "--export-out", keystores, "--password-file", pw_file(tmp_path),
                     check=False)
        assert failed.returncode == 1
        assert "refused adding TXT _acme-challenge.kafka-2.example.test." in failed.stderr
        assert "NOTAUTH" in failed.stderr and "BADSIG" in failed.stderr
        assert serial_of(acme_dir / "issued/kafka-2/cert.pem") == old_serial
        assert keystore.read_bytes() == before_bytes

        renewed = run(BIN, "pki", "acme", "renew", "kafka-2", *common, "--tsig-key", key_file, "--force",
                      "--export-format", "jks", "--export-out", keystores, "--password-file", pw_file(tmp_path))
        assert "Renewed kafka-2" in renewed.stdout
        new_serial = serial_of(acme_dir / "issued/kafka-2/cert.pem")
        assert new_serial != old_serial
        pid = broker.proc.pid
        wait_for("the renewed ACME certificate to be served", lambda: served_serial(port) == new_serial, timeout=20)
        assert broker.alive() and broker.proc.pid == pid
    finally:
        broker.stop()
