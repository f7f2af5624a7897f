"""kill -9 while the broker rewrites its ACL and SCRAM stores: on restart both parse, and every ACL and
SCRAM user whose request was acknowledged is there (temp file, fsync, rename, directory fsync)."""
import random
import threading

from harness import BIN, Broker, Pki, run

ADMIN = "admin-1"


def admin_flags(pki):
    cert, key, ca = pki.pem(ADMIN)
    return ["--ca", str(ca), "--cert", str(cert), "--key", str(key)]


def writer(broker, pki, kind, stop, acked, password_file):
    """Adds ACLs (kind 'acl') or SCRAM users (kind 'scram') one request at a time until `stop`."""
    flags = admin_flags(pki)
    i = 0
    while not stop.is_set():
        name = f"{kind}-{len(acked)}-{i}"
        if kind == "acl":
            args = ["acl", "add", "--allow-principal", f"User:{name}", "--operation", "Read", "--topic", name]
        else:
            args = ["scram", "set", "--user", name, "--mechanism", "SCRAM-SHA-256", "--iterations", "4096",
                    "--password-file", str(password_file)]
        result = run(BIN, *args, "--bootstrap-server", broker.bootstrap("MTLS"), *flags, check=False, timeout=30)
        if result.returncode == 0:
            acked.append(name)
        i += 1


def test_kill_9_during_acl_and_scram_writes_loses_nothing_acknowledged(tmp_path):
    pki = Pki(tmp_path, clients=(ADMIN,))
    password_file = tmp_path / "scram.pw"
    password_file.write_text("a-Scram-password-1\n")
    broker = Broker(tmp_path, pki, extra={
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": f"User:{ADMIN};User:broker-1",
        "ssl.principal.mapping.rules": "RULE:^CN=([^,]+).*$/$1/,DEFAULT",
    }).start()
    rng = random.Random(11)
    acls, users = [], []
    try:
        for _ in range(3):
            stop = threading.Event()
            threads = [threading.Thread(target=writer, args=(broker, pki, "acl", stop, acls, password_file)),
                       threading.Thread(target=writer, args=(broker, pki, "scram", stop, users, password_file))]
            for t in threads:
                t.start()
            threading.Event().wait(rng.uniform(1.0, 2.5))
            broker.kill()
            stop.set()
            for t in threads:
                t.join(60)
            broker.start(format_storage=False)  # refuses to start if a store does not parse
            assert broker.alive()
        assert len(acls) > 5 and len(users) > 5, (len(acls), len(users))
        listing = run(BIN, "acl", "list", "--bootstrap-server", broker.bootstrap("MTLS"), *admin_flags(pki)).stdout
        lost_acls = [a for a in acls if f"principal=User:{a}," not in listing]
        assert not lost_acls, f"acknowledged ACLs lost: {lost_acls[:3]}"
        scram = run(BIN, "scram", "list", "--bootstrap-server", broker.bootstrap("MTLS"), *admin_flags(pki)).stdout
        lost_users = [u for u in users if f"'{u}'" not in scram]
        assert not lost_users, f"acknowledged SCRAM users lost: {lost_users[:3]}"
    finally:
        broker.stop()
