"""A misspelt security key stops the real broker at start-up, naming the key meant: ignored, it would
leave that protection off (ssl.clinet.auth would silently turn mTLS off)."""
import subprocess

from harness import BIN, Broker, Pki


def test_a_misspelt_security_key_stops_start_up(tmp_path):
    pki = Pki(tmp_path, clients=("admin-1",))
    broker = Broker(tmp_path, pki, extra={"listener.name.mtls.ssl.clinet.auth": "required"})
    broker.write_config()
    result = subprocess.run([BIN, "broker", "-c", str(broker.config)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert "listener.name.mtls.ssl.clinet.auth: unknown key; did you mean listener.name.mtls.ssl.client.auth?" in out, out

    # Spelt right, the same config starts.
    del broker.props["listener.name.mtls.ssl.clinet.auth"]
    broker.props["listener.name.mtls.ssl.client.auth"] = "required"
    broker.start()
    broker.stop()
