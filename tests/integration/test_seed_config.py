"""The seed's KRaft node configuration, with the keystores its users make by hand with openssl and
keytool (../shared/seed-examples), starts a broker as it is (paths only adjusted) and serves mTLS."""
import re
import subprocess
import uuid

import pytest

import clients
from harness import BIN, SHARED_DIR, run, wait_for_port

SEED = SHARED_DIR / "seed-examples"


@pytest.mark.skipif(not (SEED / "make-seed-keystores.sh").exists(), reason="../shared/seed-examples is not present")
def test_seed_kraft_config_and_keytool_keystores_serve_mtls(tmp_path):
    ssl_dir = tmp_path / "ssl"
    run("bash", SEED / "make-seed-keystores.sh", ssl_dir, timeout=600)
    text = (SEED / "kraft-node-1.properties").read_text()
    text = text.replace("/tmp/bulwark-seed/ssl", str(ssl_dir))
    text = text.replace("/tmp/bulwark-seed/kraft-combined-logs-1", str(tmp_path / "logs"))
    # The seed's fixed ports may be taken on a shared machine: move them, keep everything else.
    ports = {p: str(clients_port) for p, clients_port in zip(("19092", "19093"), _free_ports(2))}
    for old, new in ports.items():
        text = text.replace(f":{old}", f":{new}")
    config = tmp_path / "server.properties"
    config.write_text(text)
    run(BIN, "storage", "format", "-t", run(BIN, "storage", "random-uuid").stdout.strip(), "-c", config)
    log = open(tmp_path / "broker.log", "w")
    broker = subprocess.Popen([BIN, "broker", "-c", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(int(ports["19092"]), proc=broker)
        sec = {"ca": str(ssl_dir / "ca.crt"), "cert": str(ssl_dir / "admin-1.crt"), "key": str(ssl_dir / "admin-1.key")}
        bootstrap = f"localhost:{ports['19092']}"
        topic = f"seed-{uuid.uuid4().hex[:8]}"
        clients.kcat_produce(bootstrap, sec, topic, [(b"k", b"from-admin-1", [])])
        assert clients.kcat_consume(bootstrap, sec, topic, 1, partition=None)[0][1] == b"from-admin-1"
        meta = clients.kcat_metadata(bootstrap, sec)
        assert len(next(t for t in meta["topics"] if t["topic"] == topic)["partitions"]) == 6  # num.partitions=6
    finally:
        broker.terminate()
        broker.wait(timeout=30)
        log.close()
    report = (tmp_path / "broker.log").read_text()
    # Keys Bulwark does not act on yet are named at start-up, and no password is ever printed.
    assert re.search(r"super\.users is accepted but not enforced", report)
    assert "sls1234567" not in report


def _free_ports(n):
    import socket
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports
