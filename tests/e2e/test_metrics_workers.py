"""`serve --workers 2`: /metrics, answered by either worker, adds up what both counted
(prometheus-client's multiprocess mode, set up by `serve`)."""

from __future__ import annotations

import httpx
import pytest

from tests.api.http.test_metrics import sample
from tests.e2e.conftest import ServerFactory

pytestmark = pytest.mark.e2e
REQUESTS = 40


def test_workers_add_up(server_factory: ServerFactory) -> None:
    server = server_factory(workers=2)
    key = server.create_key("metrics-workers")
    route = {"method": "GET", "route": "/v2/clients", "status": "200"}
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        for _ in range(REQUESTS):
            # A new connection each time, so the kernel spreads them over both workers.
            r = client.get(
                "/v2/clients", headers={"Authorization": f"Bearer {key}", "Connection": "close"}
            )
            assert r.status_code == 200
        for _ in range(10):  # whichever worker answers, the totals are the same
            text = client.get("/metrics", headers={"Connection": "close"}).text
            assert sample(text, "http_requests_total", **route) == REQUESTS
    files = list((server.cwd / "var" / "metrics").glob("counter_*.db"))
    assert len(files) == 2, files  # both workers counted
