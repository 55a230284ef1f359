"""CURVE from Python: the sink and EventReader URIs carry the keys (curve_server_key, curve_keys)
through a real events-proxy that admits only listed keys (docs/protocol.md, ZeroMQ > CURVE)."""
import subprocess
import time

import foxml_events as fe
from test_distributed import _proxy_program, needs_proxy, start_proxy


def _keygen(path):
    done = subprocess.run([_proxy_program(), "keygen", str(path)], capture_output=True, text=True, check=True)
    return done.stdout.strip()


class CurveProxy:
    """An events-proxy (test_distributed's launcher) that admits only the emitter's and reader's keys."""

    def __init__(self, tmp_path):
        self.server_public = tmp_path / "proxy.pub"
        self.server_public.write_text(_keygen(tmp_path / "proxy.key") + "\n")
        self.keys = {name: tmp_path / f"{name}.key" for name in ("emitter", "reader", "stranger")}
        publics = {name: _keygen(path) for name, path in self.keys.items()}
        (tmp_path / "clients").write_text(publics["emitter"] + "\n" + publics["reader"] + "\n")
        self.proxy = start_proxy(extra=["--curve-keys", str(tmp_path / "proxy.key"),
                                        "--curve-authorized", str(tmp_path / "clients")])
        self.emitters, self.subscribers = self.proxy.emitters, self.proxy.subscribers

    def query(self, who):
        return f"?curve_server_key={self.server_public}&curve_keys={self.keys[who]}"

    def statistics(self):
        return self.proxy.statistics()

    def stop(self):
        return self.proxy.stop()[0]


@needs_proxy
def test_curve_keys_in_the_uris_let_listed_keys_through_and_no_other(tmp_path):
    proxy = CurveProxy(tmp_path)
    try:
        reader = fe.EventReader(proxy.subscribers + proxy.query("reader"), idle_timeout=0.5)
        deadline = time.monotonic() + 20
        while proxy.statistics()["events"]["subscribers"]["msg_in"] < 1:  # its subscription crossed
            assert time.monotonic() < deadline
            time.sleep(0.05)
        e = fe.TrainingEventEmitter("curve-py", "zmq+" + proxy.emitters + proxy.query("emitter"))
        for step in range(50):
            e.log_metrics({"loss": 1.0}, step=step)
        assert e.close(10.0).ok
        stranger = fe.TrainingEventEmitter("curve-stranger", "zmq+" + proxy.emitters + proxy.query("stranger"))
        stranger.log_metrics({"loss": 1.0}, step=0)
        stranger.close(3.0)
        got = [ev for ev in reader if ev["event_type"] == "metrics"]
        assert [ev["run_id"] for ev in got] == ["curve-py"] * 50
        assert proxy.statistics()["curve_refused"] > 0
    finally:
        assert proxy.stop() == 0
