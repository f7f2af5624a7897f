"""Shared pieces of the integration tests: the real `bulwark` binary, a PKI made by `bulwark pki`, and
brokers started as real processes on loopback ports from a Kafka server.properties."""
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

BIN = os.environ.get("BULWARK_BIN", str(Path(__file__).resolve().parents[2] / "build/src/cli/bulwark"))
SOURCE_DIR = Path(os.environ.get("BULWARK_SOURCE_DIR", Path(__file__).resolve().parents[2]))
SHARED_DIR = SOURCE_DIR.parent / "shared"
PASSWORD = "bulwark-test-pw"


def run(*args, check=True, timeout=120, **kw):
    """Runs a command and returns the CompletedProcess (text mode)."""
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, **kw)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_block(offsets):
    """A base port with base+offset free for every offset, below the kernel's ephemeral range (where
    other tests' client sockets would take ports at any moment)."""
    import random
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    top = max(low, 11000) - max(offsets) - 1
    for _ in range(500):
        base = random.randrange(10000, top)
        sockets = []
        try:
            for offset in offsets:
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", base + offset))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise AssertionError(f"no free block of ports {offsets} below {low}")


def wait_for(what, predicate, timeout=40):
    """Polls predicate() until it returns something true, and returns that; fails after timeout s."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last: {last})")


def wait_for_port(port, timeout=30.0, proc=None, host="127.0.0.1"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"broker exited early with {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {host}:{port} after {timeout}s")


def wait_for_started(log_file, offset=0, proc=None, timeout=30.0):
    """Listeners accept from the moment they are bound; a node serves once it logs that it started
    (a one-node cluster elects itself, registers and is unfenced first)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open(log_file, "rb") as f:
            f.seek(offset)
            if b" started" in f.read():
                return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"broker exited early with {proc.returncode}")
        time.sleep(0.02)
    raise AssertionError(f"the broker did not log that it started within {timeout}s")


class Pki:
    """A CA plus one broker certificate (SANs localhost, 127.0.0.1) and client certificates, made with
    `bulwark pki`, exported as PEM (for librdkafka, kafka-python, kafkajs) and PKCS12 (for the broker)."""

    def __init__(self, root: Path, clients=("admin-1", "client-1")):
        self.root = root
        self.dir = root / "pki"
        run(BIN, "pki", "init", "--dir", self.dir)
        run(BIN, "pki", "issue", "broker", "broker-1", "--dns", "localhost", "--ip", "127.0.0.1", "--dir", self.dir)
        self.ca = self.dir / "ca" / "root.crt"
        self.exports = {}
        for name in ("broker-1",) + tuple(clients):
            if name != "broker-1":
                run(BIN, "pki", "issue", "client", name, "--dir", self.dir)
            out = root / "export" / name
            run(BIN, "pki", "export", name, "--format", "pem", "--dir", self.dir, "--out", out)
            run(BIN, "pki", "export", name, "--format", "pkcs12", "--password", PASSWORD, "--dir", self.dir,
                "--out", out)
            self.exports[name] = out

    def pem(self, name):
        """(certificate-with-chain, key, ca) paths for a client or broker."""
        out = self.exports[name]
        return out / f"{name}.chain.pem", out / f"{name}.key", out / "ca.pem"

    def pkcs12(self, name):
        out = self.exports[name]
        return out / f"{name}.keystore.p12", out / f"{name}.truststore.p12"


class Broker:
    """One `bulwark broker` process with PLAINTEXT, SSL (no client auth) and MTLS listeners."""

    # PLAIN users of the SASL listeners (sasl=True).
    PLAIN_USERS = {"alice": "alice-secret", "bob": "bob-secret"}

    def __init__(self, root: Path, pki: Pki, extra=None, node_id=1, sasl=False):
        self.root = root
        self.pki = pki
        self.node_id = node_id
        # Below the ephemeral range: a restarted broker binds the same ports, which another test's
        # client sockets could otherwise have taken meanwhile.
        names = ["PLAINTEXT", "SSL", "MTLS", "CONTROLLER"] + (["SASL_SSL", "SASL_PLAINTEXT"] if sasl else [])
        base = free_port_block(range(len(names)))
        self.ports = {name: base + i for i, name in enumerate(names)}
        self.client_listeners = [n for n in self.ports if n != "CONTROLLER"]
        self.log_dir = root / "logs"
        self.config = root / "server.properties"
        self.proc = None
        self.log_file = root / "broker.log"
        keystore, truststore = pki.pkcs12("broker-1")
        props = {
            "process.roles": "broker,controller",
            "node.id": str(node_id),
            "controller.quorum.voters": f"{node_id}@127.0.0.1:{self.ports['CONTROLLER']}",
            "controller.listener.names": "CONTROLLER",
            "listeners": ",".join(f"{name}://127.0.0.1:{port}" for name, port in self.ports.items()),
            "advertised.listeners": ",".join(f"{n}://127.0.0.1:{self.ports[n]}" for n in self.client_listeners),
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SSL:SSL,MTLS:SSL,CONTROLLER:SSL" +
                                              (",SASL_SSL:SASL_SSL,SASL_PLAINTEXT:SASL_PLAINTEXT" if sasl else ""),
            "inter.broker.listener.name": "MTLS",
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": str(keystore),
            "ssl.keystore.password": PASSWORD,
            "ssl.truststore.type": "PKCS12",
            "ssl.truststore.location": str(truststore),
            "ssl.truststore.password": PASSWORD,
            "listener.name.mtls.ssl.client.auth": "required",
            "listener.name.controller.ssl.client.auth": "required",
            "log.dirs": str(self.log_dir),
            "num.partitions": "1",
            "auto.create.topics.enable": "true",
            "log.flush.interval.messages": "1",
        }
        if sasl:
            users = " ".join(f'user_{u}="{p}"' for u, p in self.PLAIN_USERS.items())
            for listener in ("sasl_ssl", "sasl_plaintext"):
                props[f"listener.name.{listener}.sasl.enabled.mechanisms"] = "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"
                props[f"listener.name.{listener}.plain.sasl.jaas.config"] = (
                    f"org.apache.kafka.common.security.plain.PlainLoginModule required {users};")
        props.update(extra or {})
        self.props = props

    def write_config(self):
        self.config.write_text("".join(f"{k}={v}\n" for k, v in self.props.items()))

    def start(self, format_storage=True, add_scram=()):
        """add_scram: kafka-storage.sh-style credentials stored at format time, e.g.
        "SCRAM-SHA-256=[name=carol,password=carol-secret]"."""
        self.write_config()
        if format_storage and not (self.log_dir / "meta.properties").exists():
            cluster_id = run(BIN, "storage", "random-uuid").stdout.strip()
            scram_args = [arg for spec in add_scram for arg in ("--add-scram", spec)]
            run(BIN, "storage", "format", "-t", cluster_id, "-c", self.config, *scram_args)
        log_start = self.log_file.stat().st_size if self.log_file.exists() else 0
        self._log = open(self.log_file, "ab")
        self.proc = subprocess.Popen([BIN, "broker", "-c", str(self.config)], stdout=self._log,
                                     stderr=subprocess.STDOUT)
        for name in self.client_listeners:
            wait_for_port(self.ports[name], proc=self.proc)
        wait_for_started(self.log_file, log_start, self.proc)
        return self

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.proc:
            self._log.close()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self):
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def bootstrap(self, listener):
        return f"127.0.0.1:{self.ports[listener]}"


def signed_with_dates(pki, work, start, end):
    """(chain, key) for CN=broker-1 (SANs localhost, 127.0.0.1) from the PKI's intermediate CA, valid
    start..end (YYYYMMDDHHMMSSZ), made by `openssl ca` as an operator would: `pki issue` cannot make an
    expired or future certificate. chain = leaf then intermediate."""
    work.mkdir()
    (work / "index.txt").write_text("")
    (work / "serial").write_text("1000\n")
    (work / "ca.cnf").write_text(
        "[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\nnew_certs_dir=.\nserial=serial\ndefault_md=sha256\n"
        "policy=p\ncopy_extensions=copy\nunique_subject=no\n[p]\ncommonName=supplied\n")
    run("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", work / "key.pem", "-out", work / "req.csr", "-subj", "/CN=broker-1",
        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1")
    run("openssl", "ca", "-config", "ca.cnf", "-batch", "-notext", "-cert", pki.dir / "ca/intermediate.crt",
        "-keyfile", pki.dir / "ca/intermediate.key", "-in", "req.csr", "-out", "cert.pem",
        "-startdate", start, "-enddate", end, cwd=work)
    chain = work / "chain.pem"
    chain.write_text((work / "cert.pem").read_text() + (pki.dir / "ca/intermediate.crt").read_text())
    return chain, work / "key.pem"


def have(tool):
    return shutil.which(tool) is not None
