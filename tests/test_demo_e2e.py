"""End to end with real processes: the demo runner starts the sandbox, the worker
(``tryon_poll``) and the web server; a shopper's try-on goes through the API and
its picture lands on storage; Ctrl-C stops all three."""

import importlib.util
import re
import sys
from pathlib import Path

import pytest
import requests

# Its own project and database: run in the first suite only (see the marker).
pytestmark = pytest.mark.run_once

ROOT = Path(__file__).resolve().parent.parent


def _smoke_module():
    spec = importlib.util.spec_from_file_location("demo_smoke", ROOT / "scripts" / "demo_smoke.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_a_try_on_succeeds_in_the_running_demo_and_ctrl_c_stops_it(tmp_path):
    smoke = _smoke_module()
    process, shop_url, output = smoke.start_demo([sys.executable, "scripts/demo.py"], tmp_path)
    try:
        job = smoke.try_on(shop_url)
    finally:
        exit_code = smoke.stop_demo(process)
    assert job["status"] == "succeeded"
    # The picture is on the shop's storage, under the job's unguessable result name.
    stored = sorted((tmp_path / "media" / "tryon" / "results").iterdir())
    assert [path.name for path in stored] == [job["result_url"].rsplit("/", 1)[1]]
    assert stored[0].stat().st_size > 10_000
    assert smoke.check_stopped(exit_code, output) == []
    text = "".join(output)
    assert "Sandbox provider listening on" in text
    assert "user 'admin', password 'tryon-demo'" in text
    # Each process was stopped: nothing answers on the demo's ports any more.
    sandbox_url = re.search(r"Sandbox:\s+(http://[\d.:]+)/", text).group(1)
    for url in (shop_url, sandbox_url):
        with pytest.raises(requests.ConnectionError):
            requests.get(url, timeout=5)
