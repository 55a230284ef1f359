"""CURVE from Python: the sink and EventReader URIs carry the keys (curve_server_key, curve_keys)
through a real events-proxy that admits only listed keys (docs/protocol.md, ZeroMQ > CURVE)."""
import json
import random
import selectors
import signal
import subprocess
import time

import foxml_events as fe
from test_distributed import _proxy_program, needs_proxy


def _keygen(path):
    done = subprocess.run([_proxy_program(), "keygen", str(path)], capture_output=True, text=True, check=True)
    return done.stdout.strip()


class CurveProxy:
    def __init__(self, tmp_path):
        self.server_public = tmp_path / "proxy.pub"
        self.server_public.write_text(_keygen(tmp_path / "proxy.key") + "\n")
        self.keys = {name: tmp_path / f"{name}.key" for name in ("emitter", "reader", "stranger")}
        publics = {name: _keygen(path) for name, path in self.keys.items()}
        (tmp_path / "clients").write_text(publics["emitter"] + "\n" + publics["reader"] + "\n")
        for _ in range(20):
            base = random.randrange(20000, 60000, 4)
            self.emitters, self.subscribers = f"tcp://127.0.0.1:{base}", f"tcp://127.0.0.1:{base + 2}"
            self.process = subprocess.Popen(
                [_proxy_program(), "--emitters", self.emitters, "--subscribers", self.subscribers,
                 "--stats-interval", "0", "--curve-keys", str(tmp_path / "proxy.key"),
                 "--curve-authorized", str(tmp_path / "clients")],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if "emitters" in self._readline():
                return
            self.process.kill()
            self.process.wait()
        raise RuntimeError("events-proxy did not start")

    def query(self, who):
        return f"?curve_server_key={self.server_public}&curve_keys={self.keys[who]}"

    def _readline(self):
        with selectors.DefaultSelector() as sel:
            sel.register(self.process.stderr, selectors.EVENT_READ)
            if not sel.select(20):
                return ""
        return self.process.stderr.readline()

    def statistics(self):
        self.process.send_signal(signal.SIGUSR1)
        return json.loads(self._readline().split(": ", 1)[1])

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.communicate(timeout=20)
        return self.process.returncode


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
