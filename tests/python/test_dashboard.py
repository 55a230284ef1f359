"""The web dashboard in a real browser (Debian's headless chromium through Selenium and chromedriver)
against the real events-bridge, following an event file that real emitters write to: the run list,
a live run page (progress advancing, stage tracker and loss chart filling), a bridge restart the page
rides through, and cancel -> confirm -> the trainer's own run_complete `cancelled` on the page.
Screenshots go to build/test-artifacts/ (the README's come from here)."""

import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, List, Optional

import pytest

from conftest import REPO, installed_program, json_lines

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = REPO / "build" / "test-artifacts"
WAIT_S = 30  # liveness only: generous for a loaded machine

def _skip_reason() -> Optional[str]:
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        return "Debian's chromium and chromium-driver are not installed (scripts/setup.sh installs them)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (scripts/setup.sh installs it)"
    if installed_program("events-bridge") is None:
        return "events-bridge is not built (it needs Boost.Beast: libboost-dev)"
    return None


pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")

# A real emitter loop (no torch: it starts in a fraction of a second), obeying `cancel` as a
# trainer does: it acknowledges with command_done and ends the run itself, `cancelled`.
TRAINER = r'''
import math, sys, time
import foxml_events as fe

def main():
    run_id, path, steps, delay, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
    events = fe.init_training_events(run_id, path, resources_interval=0.5)
    epochs = 4
    with events:
        events.emit_run_start(
            config={"lr": 0.1, "batch_size": 32, "optimizer": {"name": "sgd", "momentum": 0.9},
                    "price_per_hour": 3.5, "stages": ["prepare", "training", "validation"]},
            name=f"dashboard-{mode}", tags=["dashboard-test", mode], total_steps=steps, total_epochs=epochs)
        with events.stage("prepare"):
            events.log("info", f"{mode}: {steps} steps, {delay} s each")
        with events.stage("training"):
            for step in range(steps):
                command = events.poll_command()
                if command is not None and command.name == "cancel":
                    events.log("warning", f"cancel from {command.sender or 'someone'} at step {step}")
                    events.command_done(command, "ok", f"cancelled at step {step}")
                    events.emit_run_complete("cancelled")
                    events.close()
                    return 0
                loss = 2.0 * math.exp(-step / 60.0) + 0.05 + 0.03 * math.sin(step)
                metrics = {"loss": loss, "accuracy": 1.0 - math.exp(-step / 45.0)}
                if step % 10 == 0:
                    metrics["val_loss"] = 1.08 * loss + 0.04
                epoch = step * epochs // steps
                events.log_metrics(metrics, step=step, epoch=epoch)
                events.emit_progress("training", 100.0 * (step + 1) / steps, step=step + 1, total_steps=steps,
                                     epoch=epoch + 1, total_epochs=epochs)
                if step % 20 == 0:
                    events.log("info", f"step {step}: loss {loss:.4f}")
                if mode == "failing" and step == steps // 2:
                    raise RuntimeError("loss diverged")
                time.sleep(delay)
        events.emit_target_complete("digits", "success", models_trained=2, best_auc=0.987,
                                    metrics={"val_accuracy": 0.93})
    return 0

sys.exit(main())
'''


def _trainer(tmp_path: Path, events_path: Path, run_id: str, steps: int, delay: float, mode: str) -> subprocess.Popen:
    script = tmp_path / "trainer.py"
    if not script.exists():
        script.write_text(TRAINER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    return subprocess.Popen([sys.executable, str(script), run_id, str(events_path), str(steps), str(delay), mode],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


class Bridge:
    """events-bridge on `port` (0: a free one) following one event file."""

    def __init__(self, events_path: Path, port: int = 0, *extra: str) -> None:
        self.process = subprocess.Popen([installed_program("events-bridge"), str(events_path), "--port", str(port), *extra],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()  # its one stdout line, once it listens
        match = re.fullmatch(r"events-bridge: serving (http://[^/]+:(\d+)/)\n", line)
        if not match:
            self.stop()
            raise AssertionError(f"events-bridge printed {line!r}; stderr: {self.process.stderr.read()}")
        self.url, self.port = match.group(1), int(match.group(2))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            assert self.process.wait(timeout=WAIT_S) == 0, "events-bridge did not exit cleanly on SIGTERM"
        finally:
            self.process.stdout.close()
            self.process.stderr.close()


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000", "--lang=en-GB"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # Never selenium-manager: Debian's driver, Debian's browser. Not under the sanitizer run's
    # preloaded libasan either: the browser is no code of ours.
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "ASAN_OPTIONS", "PYTHONMALLOC")}
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER, env=env), options=options)
    driver.expected_errors = ["WebSocket", "ERR_CONNECTION_REFUSED"]  # while the bridge restarts
    yield driver
    try:
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"
                  and not any(expected in e["message"] for expected in driver.expected_errors)]
        # Script errors fail the test, and so does any failed request the test did not ask for.
        assert not errors, errors
    finally:
        driver.quit()


def _wait(driver, condition, what: str, timeout: float = WAIT_S) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: condition(), message=what)


def _js(driver, script: str, *args: Any) -> Any:
    return driver.execute_script(script, *args)


def _screenshot(driver, name: str, height: int) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.set_window_size(1400, height)
    path = ARTIFACTS / name
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 10_000
    return path


def test_dashboard_live_run_restart_and_cancel(tmp_path, browser):
    from selenium.webdriver.common.by import By

    events_path = tmp_path / "events.jsonl"
    events_path.touch()
    bridge = Bridge(events_path)
    trainers: List[subprocess.Popen] = []
    try:
        driver = browser
        driver.get(bridge.url + "#/")
        row = '#runs-body tr[data-run-id="{}"]'
        _wait(driver, lambda: driver.find_element(By.ID, "runs-empty").is_displayed(), "the empty state")
        _wait(driver, lambda: driver.find_element(By.ID, "connection").get_attribute("data-state") == "live", "live")

        # Runs arrive while the page is open: a finished one and a failed one (each toasts its end),
        # then the live one, which only a cancel ends.
        history = [_trainer(tmp_path, events_path, "dash-done", 60, 0.02, "finishing"),
                   _trainer(tmp_path, events_path, "dash-fail", 60, 0.02, "failing")]
        for trainer, code in zip(history, (0, 1)):
            trainer.communicate(timeout=WAIT_S)
            assert trainer.returncode == code
        live = _trainer(tmp_path, events_path, "dash-live", 2000, 0.04, "live")
        trainers.append(live)

        def stages() -> List[tuple]:
            return [tuple(pair) for pair in _js(driver, """return [...document.querySelectorAll(
                '#stage-tracker li[data-state]')].map((li) => [li.dataset.stage, li.dataset.state])""")]

        def status_of(run_id: str) -> Optional[str]:
            return _js(driver, "const r = document.querySelector(arguments[0]); return r && r.dataset.status;",
                       row.format(run_id))

        _wait(driver, lambda: (status_of("dash-done"), status_of("dash-fail"), status_of("dash-live"))
              == ("completed", "failed", "running"), "the run list shows the three runs with their statuses")
        assert _js(driver, "return document.querySelector('[data-count=running]').textContent") == "1"
        assert _js(driver, "return document.querySelector('[data-count=failed]').textContent") == "1"
        assert not driver.find_element(By.ID, "runs-empty").is_displayed()
        for run_id, status in (("dash-done", "completed"), ("dash-fail", "failed")):
            _wait(driver, lambda: driver.find_elements(
                By.CSS_SELECTOR, f'#toasts .toast[data-status="{status}"][data-run-id="{run_id}"]'),
                f"a notification for {run_id} ending {status}")

        def elapsed() -> str:  # rows are rebuilt on every fetch: look the cell up each time
            return _js(driver, "return document.querySelector(arguments[0]).textContent", row.format("dash-live") + " .elapsed")

        first = elapsed()
        _wait(driver, lambda: elapsed() != first, "the live run's elapsed time ticks")
        # Search and status filter narrow the list; clearing them brings every run back.
        search = driver.find_element(By.ID, "run-search")
        search.send_keys("fail")
        _wait(driver, lambda: len(driver.find_elements(By.CSS_SELECTOR, "#runs-body tr")) == 1, "search narrows")
        _js(driver, "arguments[0].value = ''; arguments[0].dispatchEvent(new Event('input')); arguments[0].blur()", search)
        _wait(driver, lambda: len(driver.find_elements(By.CSS_SELECTOR, "#runs-body tr")) == 3, "search cleared")
        _js(driver, "const f = document.getElementById('status-filter'); f.value = 'failed'; f.dispatchEvent(new Event('change'))")
        _wait(driver, lambda: _js(driver, "return [...document.querySelectorAll('#runs-body tr')].map((r) => r.dataset.runId)")
              == ["dash-fail"], "the status filter narrows")
        _js(driver, "const f = document.getElementById('status-filter'); f.value = ''; f.dispatchEvent(new Event('change'))")
        _wait(driver, lambda: len(driver.find_elements(By.CSS_SELECTOR, "#runs-body tr")) == 3, "filter cleared")
        _screenshot(driver, "dashboard-runs.png", 620)

        # Finished runs show their final state from history: the failed one, its failed stage and error.
        _js(driver, "location.hash = '#/runs/dash-fail'")
        _wait(driver, lambda: status_now(driver) == "failed", "the failed run's page")
        _wait(driver, lambda: stages() == [("prepare", "completed"), ("training", "failed"), ("validation", "pending")],
              f"the stage tracker shows where it failed (saw {stages()})")
        assert "loss diverged" in driver.find_element(By.ID, "errors-list").text
        assert not driver.find_element(By.ID, "cancel-button").is_displayed()
        _js(driver, "location.hash = '#/runs/dash-done'")
        _wait(driver, lambda: status_now(driver) == "completed", "the completed run's page")
        _wait(driver, lambda: _js(driver, "return [...document.querySelectorAll('#targets-table tbody td')].map((td) => (td.querySelector('.badge') ? td.querySelector('.badge').lastChild : td).textContent)")
              == ["digits", "success", "2", "0.987", "val_accuracy=0.93"], "the targets table")
        assert driver.find_element(By.ID, "progress-pct").text == "100.0%"
        _js(driver, "history.back(); history.back()")
        _wait(driver, lambda: driver.find_element(By.ID, "view-runs").is_displayed(), "back to the run list")

        # The run page, live.
        _js(driver, "document.querySelector(arguments[0]).click()", row.format("dash-live") + " a")
        _wait(driver, lambda: driver.find_element(By.ID, "run-status").get_attribute("data-status") == "running",
              "the run page shows the live run")

        def pct() -> float:
            return float(driver.find_element(By.ID, "progress-pct").get_attribute("data-value") or 0)

        def points() -> dict:
            return _js(driver, "return window.foxmlDashboard.chartPoints()")

        def loss_points(series: str) -> int:  # points of one series of the `loss` chart
            return points()["metrics"].get("loss", {}).get(series, 0)


        _wait(driver, lambda: stages() == [("prepare", "completed"), ("training", "active"), ("validation", "pending")],
              f"the stage tracker: prepare done, training active, validation pending (saw {stages()})")
        start_pct, start_loss = pct(), loss_points("loss")
        _wait(driver, lambda: pct() > start_pct, "progress advances")
        _wait(driver, lambda: loss_points("loss") > start_loss + 20 and loss_points("val_loss") >= 3,
              "the loss chart fills, training and validation on one chart")
        _wait(driver, lambda: max(points()["resources"].values(), default=0) >= 2,
              "the resources chart fills")
        log_lines = driver.find_element(By.ID, "log-lines")
        _wait(driver, lambda: "step 0: loss" in log_lines.text, "logs show")
        assert driver.find_element(By.ID, "run-cost").text.endswith("(at 3.5/h)")
        assert _js(driver, "return document.querySelector('#config-table tr[data-key=\"optimizer.name\"] td:last-child')"
                           ".textContent") == "sgd"
        assert {"dashboard-test", "live"} <= {t.text for t in driver.find_elements(By.CSS_SELECTOR, "#run-tags .tag")}
        _wait(driver, lambda: loss_points("loss") >= 150, "enough of a curve for the picture")
        _js(driver, "document.getElementById('toasts').replaceChildren()")  # a clean picture
        _screenshot(driver, "dashboard-run.png", 1900)
        driver.set_window_size(1400, 1000)
        # The level filter hides the info lines; clear empties the panel, and new lines come after.
        _js(driver, "const l = document.getElementById('log-level'); l.value = 'warning'; l.dispatchEvent(new Event('change'))")
        assert log_lines.text == ""
        _js(driver, "const l = document.getElementById('log-level'); l.value = 'debug'; l.dispatchEvent(new Event('change'))")
        assert "step 0: loss" in log_lines.text
        # The trainer keeps logging, so a line may arrive between the click and the look: every line
        # shown after the clear must be newer than all those it removed (each names its own step).
        before_clear = set(log_lines.text.splitlines())
        driver.find_element(By.ID, "log-clear").click()
        assert not set(log_lines.text.splitlines()) & before_clear
        _wait(driver, lambda: re.search(r"step \d+: loss", log_lines.text), "new log lines after a clear")
        assert not set(log_lines.text.splitlines()) & before_clear

        # The bridge goes away and comes back on the same port: the page says so and goes on.
        port = bridge.port
        bridge.stop()
        _wait(driver, lambda: driver.find_element(By.ID, "connection").get_attribute("data-state") != "live",
              "the page shows the connection lost")
        bridge = Bridge(events_path, port)
        _wait(driver, lambda: driver.find_element(By.ID, "connection").get_attribute("data-state") == "live",
              "the page reconnects to the restarted bridge")
        resumed = pct()
        _wait(driver, lambda: pct() > resumed, "progress advances after the restart")

        # Cancel: a confirmation dialog, then `cancelling...` until the trainer's own run_complete.
        _js(driver, """
            window.sawCancelling = false;
            const node = document.getElementById('cancel-state');
            new MutationObserver(() => { if (!node.hidden) window.sawCancelling = true; })
              .observe(node, {attributes: true});""")
        driver.find_element(By.ID, "cancel-button").click()
        assert driver.find_element(By.ID, "cancel-dialog").is_displayed()
        assert status_now(driver) == "running"  # the dialog alone sends nothing
        driver.find_element(By.ID, "confirm-cancel").click()
        _wait(driver, lambda: status_now(driver) == "cancelled", "the page shows the run cancelled")
        assert _js(driver, "return window.sawCancelling") is True
        assert not driver.find_element(By.ID, "cancel-state").is_displayed()
        assert not driver.find_element(By.ID, "cancel-button").is_displayed()
        _wait(driver, lambda: driver.find_elements(By.CSS_SELECTOR, '#toasts .toast[data-status="cancelled"]'),
              "a notification for the status transition")
        assert live.wait(timeout=WAIT_S) == 0, live.stderr.read()
        ours = [e for e in json_lines(events_path) if e["run_id"] == "dash-live"]
        (done,) = [e for e in ours if e["event_type"] == "command_done"]
        assert done["outcome"] == "ok" and done["command"] == "cancel"
        assert ours[-1]["event_type"] == "run_complete" and ours[-1]["status"] == "cancelled"
        assert ours[-1]["pid"] == live.pid  # the trainer ended its run itself
        _wait(driver, lambda: [s for s in stages() if s[1] == "active"] == [], "no stage stays active")
        _screenshot(driver, "dashboard-run-cancelled.png", 1000)
    finally:
        for trainer in trainers:
            if trainer.poll() is None:
                trainer.kill()
            trainer.communicate()
        bridge.stop()


def test_dashboard_with_a_token(tmp_path, browser):
    """Opened once as /?token=T, the page works from the bridge's cookie and drops the token from
    the address bar; without it, nothing but a 401."""
    from selenium.webdriver.common.by import By

    events_path = tmp_path / "events.jsonl"
    trainer = _trainer(tmp_path, events_path, "dash-token", 5, 0.0, "finishing")
    trainer.communicate(timeout=WAIT_S)
    assert trainer.returncode == 0
    bridge = Bridge(events_path, 0, "--token", "s3cret-token")
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(bridge.url + "app.js", timeout=WAIT_S)
        refused.value.close()
        assert refused.value.code == 401
        driver = browser
        driver.get(bridge.url + "?token=s3cret-token#/")
        _wait(driver, lambda: _js(driver, "const r = document.querySelector('#runs-body tr[data-run-id=\"dash-token\"]');"
                                          "return r && r.dataset.status") == "completed", "the run list loads")
        assert "s3cret" not in driver.current_url and driver.current_url.endswith("/#/")
        _wait(driver, lambda: _js(driver, "return window.foxmlDashboard.connection()") == "live", "the WebSocket is up")
        _js(driver, "location.hash = '#/runs/dash-token'")
        _wait(driver, lambda: status_now(driver) == "completed", "the run page loads")
        assert _js(driver, "return document.cookie") == ""  # HttpOnly: no script reads the token
        driver.expected_errors.append("/api/runs/no-such-run")  # the page asks, the bridge says 404
        _js(driver, "location.hash = '#/runs/no-such-run'")
        _wait(driver, lambda: driver.find_element(By.ID, "run-missing").is_displayed(), "an unknown run says so")
        assert not driver.find_element(By.ID, "stage-tracker").is_displayed()
    finally:
        bridge.stop()


def status_now(driver) -> Optional[str]:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, "run-status").get_attribute("data-status")
