"""No secret leaves the HTTP service: not the database password, the token or the JWT secret.

``eventstore run`` serves a PostgreSQL store (password set) through a TCP proxy the test
controls, with a token and a JWT secret. Every route is called with ``?token=`` while the
database answers, while the connection is cut (503s, /health down) and once it is back;
its whole output (start-up lines, access log, error log) and every response body must hold
none of the secrets, in plain or URL-quoted form. The service recovers without a restart.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx

from tests.http.conftest import Running
from tests.proxy import TcpProxy
from tests.reliability.test_http_auth import WRITE_BODY, Route
from tests.reliability.test_http_hostile import PARAM
from tests.reliability.test_secrets import assert_clean, pg_section, write

#: Both contain XYZZY, one of the forms ``assert_clean`` looks for.
TOKEN = "tok-XYZZY-" + uuid.uuid4().hex
JWT_SECRET = "jwt-XYZZY-" + uuid.uuid4().hex * 2


def call_every_route(run: Running, cid: str) -> list[httpx.Response]:
    """Each route of the schema once, with ``?token=``; the responses."""
    with httpx.Client(base_url=run.url, timeout=30, params={"token": TOKEN}) as client:
        schema = client.get("/openapi.json")
        assert schema.status_code == 200, schema.text
        responses = [schema]
        for path, operations in schema.json()["paths"].items():
            for method in operations:
                route = Route(method.upper(), PARAM.sub(r"{\1}", path))
                if route.method != "DELETE":
                    responses.append(route.send(client, cid))
        responses.append(client.get("/events", params={"sender_id": cid, "format": "jsonl"}))
    # a wrong token that looks like the real one is not echoed either
    responses.append(httpx.get(f"{run.url}/events", params={"token": TOKEN[:-1]}, timeout=30))
    return responses


def test_no_secret_in_output_or_responses_through_a_database_outage(
    tmp_path: Path, postgres_url: str
) -> None:
    with TcpProxy("127.0.0.1", 5432) as proxy:
        # PostgreSQL here trusts local connections, so the password is accepted as it is
        endpoints = write(tmp_path / "endpoints.yml", pg_section(postgres_url, port=proxy.port))
        run = Running(
            "--endpoints",
            endpoints,
            env={"EVENTSTORE_AUTH_TOKEN": TOKEN, "EVENTSTORE_JWT_SECRET": JWT_SECRET},
        )
        cid = f"secrets-{uuid.uuid4().hex[:8]}"
        bodies: list[str] = []
        try:
            up = call_every_route(run, cid)
            assert [r.status_code for r in up if r.status_code >= 400] == [401], [
                (r.request.url.path, r.status_code, r.text[:200]) for r in up
            ]
            proxy.cut()
            down = call_every_route(run, cid)
            failed = {r.request.url.path for r in down if r.status_code == 503}
            assert "/health" in failed and f"/conversations/{cid}/tracker" in failed, [
                (r.request.url.path, r.status_code) for r in down
            ]
            for response in down:
                if response.status_code == 503 and response.request.url.path != "/health":
                    assert response.json()["reason"] == "ServiceUnavailable"
            proxy.restore()
            again = httpx.post(
                f"{run.url}/conversations/{cid}/tracker/events",
                params={"token": TOKEN},
                json=WRITE_BODY,
                timeout=30,
            )
            assert again.status_code == 200, again.text  # back without a restart
            bodies = [r.text for r in up + down + [again]]
        finally:
            code = run.stop()
    assert code == 0
    assert "token=***" in run.output
    assert_clean(run.output, *bodies)
