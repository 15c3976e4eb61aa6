"""The main job's supervisor (dataplatform/supervisor.py) without a broker: a part that
crashes is logged and leaves the others running, and stopping waits for the parts asked."""

from __future__ import annotations

import logging
import threading

from dataplatform.supervisor import Supervisor


def test_a_part_that_crashes_is_logged_and_the_others_keep_running(caplog):
    supervisor = Supervisor(say=lambda _line: None)
    release = threading.Event()
    with caplog.at_level(logging.ERROR, logger="dataplatform.supervisor"):
        supervisor.spawn("broken-sink", lambda: 1 / 0)
        supervisor.spawn("housing-simulator", release.wait)
        supervisor.join("sink", timeout=10)
    assert "broken-sink stopped with an error" in caplog.text and "ZeroDivisionError" in caplog.text
    assert [t.is_alive() for t in threading.enumerate() if t.name == "housing-simulator"] == [True]
    release.set()
    supervisor.join("simulator", timeout=10)
    assert not [t for t in threading.enumerate() if t.name == "housing-simulator"]


def test_without_a_processor_there_is_nothing_to_watch_or_stop():
    supervisor = Supervisor(say=lambda _line: None)
    assert supervisor.processor_alive()
    supervisor.stop_watching()
    supervisor.stop_processor()
    assert supervisor.stopping.is_set()
