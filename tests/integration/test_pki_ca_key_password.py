"""CA keys at rest under a passphrase (`pki init --ca-key-password-file`), checked with real openssl, and
the warning for a password given on the command line."""
from test_pki import fails, mode, pki, run

PASSPHRASE = "correct horse battery staple"


def write(path, text):
    path.write_text(text)
    return path


def test_encrypted_ca_keys_need_their_passphrase_to_sign(tmp_path):
    d = tmp_path / "pki"
    good = write(tmp_path / "ca.pass", PASSPHRASE + "\n")
    wrong = write(tmp_path / "wrong.pass", "not the passphrase\n")
    pki("init", "--dir", d, "--ca-key-password-file", good)
    for key in ("root.key", "intermediate.key"):
        path = d / "ca" / key
        assert "BEGIN ENCRYPTED PRIVATE KEY" in path.read_text()
        assert mode(path) == 0o600
        assert run("openssl", "pkey", "-in", path, "-passin", "pass:nope", "-noout", check=False).returncode != 0
        run("openssl", "pkey", "-in", path, "-passin", f"file:{good}", "-noout")

    # Signing without the passphrase, or with a wrong one, is refused in plain words.
    assert "is encrypted: give its passphrase with --ca-key-password-file" in fails(
        "issue", "broker", "kafka-1", "--dns", "kafka-1", "--dir", d)
    assert "wrong password" in fails("issue", "broker", "kafka-1", "--dns", "kafka-1", "--dir", d,
                                     "--ca-key-password-file", wrong)
    assert not (d / "issued" / "kafka-1").exists()

    pki("issue", "broker", "kafka-1", "--dns", "kafka-1", "--dir", d, "--ca-key-password-file", good)
    run("openssl", "verify", "-CAfile", d / "ca" / "root.crt", "-untrusted", d / "ca" / "intermediate.crt",
        d / "issued" / "kafka-1" / "cert.pem")
    # Reading needs no passphrase: export and list work without it.
    pki("export", "kafka-1", "--dir", d, "--format", "pem")
    assert "kafka-1" in pki("list", "--dir", d).stdout
    # Revocation and CRLs sign, so they need it.
    assert "is encrypted" in fails("revoke", "kafka-1", "--dir", d)
    pki("revoke", "kafka-1", "--dir", d, "--ca-key-password-file", good)
    assert "is encrypted" in fails("crl", "--dir", d)
    pki("crl", "--dir", d, "--ca-key-password-file", good)
    run("openssl", "crl", "-in", d / "crl.pem", "-CAfile", d / "ca" / "intermediate.crt", "-noout")
    assert "is encrypted" in fails("renew", "kafka-1", "--dir", d)
    # bootstrap on the encrypted CA needs it too.
    assert "is encrypted" in fails("bootstrap", "--dir", d, "--client", "admin-1", "--password-file", good)
    pki("bootstrap", "--dir", d, "--client", "admin-1", "--password-file", good, "--ca-key-password-file", good)


def test_bootstrap_can_make_an_encrypted_ca(tmp_path):
    d = tmp_path / "pki"
    good = write(tmp_path / "ca.pass", PASSPHRASE + "\n")
    pki("bootstrap", "--dir", d, "--broker", "kafka-1=127.0.0.1", "--password-file", good,
        "--ca-key-password-file", good)
    assert "BEGIN ENCRYPTED PRIVATE KEY" in (d / "ca" / "intermediate.key").read_text()
    assert "is encrypted" in fails("issue", "client", "late", "--dir", d)


def test_password_on_the_command_line_is_warned_about(tmp_path):
    d = tmp_path / "pki"
    pki("init", "--dir", d)
    pki("issue", "client", "admin-1", "--dir", d)
    result = pki("export", "admin-1", "--dir", d, "--format", "pkcs12", "--password", "secret-123")
    assert "warning: --password puts the password on the command line" in result.stderr
    assert "secret-123" not in result.stderr + result.stdout
    result = pki("export", "admin-1", "--dir", d, "--format", "pkcs12", "--force",
                 "--password-file", write(tmp_path / "p", "secret-123\n"))
    assert "warning" not in result.stderr
