"""The process itself: health, operator endpoints, reset, graceful shutdown."""

import json
import signal
import threading
from pathlib import Path

from conftest import JSON, boto_client, http


def test_health_endpoints(ecrd):
    status, headers, raw = http("GET", f"{ecrd.url}/_ecrd/health")
    assert status == 200
    health = json.loads(raw)
    assert health["status"] == "ok"
    assert health["backend"] == "memory"
    assert isinstance(health["version"], str)
    assert isinstance(health["uptimeSeconds"], (int, float))

    status, _, raw = http("GET", f"{ecrd.url}/_localstack/health")
    assert status == 200
    assert json.loads(raw)["services"]["ecr"] == "running"


def test_reset_endpoints_drop_state(ecrd):
    client = boto_client(ecrd)
    for path in ("/_ecrd/reset", "/moto-api/reset"):
        client.create_repository(repositoryName="before-reset")
        client.put_account_setting(name="REGISTRY_POLICY_SCOPE", value="V1")
        status, _, _ = http("POST", f"{ecrd.url}{path}")
        assert status == 200, path
        assert client.describe_repositories()["repositories"] == [], path
    # The server keeps serving after a reset.
    client.create_repository(repositoryName="after-reset")
    assert len(client.describe_repositories()["repositories"]) == 1


def test_clock_endpoint(ecrd):
    status, _, raw = http("GET", f"{ecrd.url}/_ecrd/clock")
    assert status == 200
    assert "now" in json.loads(raw)
    status, _, raw = http("POST", f"{ecrd.url}/_ecrd/clock", body=b'{"offsetSeconds": 60}', headers=JSON)
    assert status == 200
    assert json.loads(raw)["offsetSeconds"] >= 59
    status, _, _ = http("POST", f"{ecrd.url}/_ecrd/clock", body=b"{}", headers=JSON)
    assert status == 400
    # Reset puts the clock back, so signatures made now verify again.
    ecrd.reset()
    assert json.loads(http("GET", f"{ecrd.url}/_ecrd/clock")[2])["offsetSeconds"] == 0


def test_operator_endpoints_refuse_what_a_web_page_can_send(ecrd):
    """A cross-site form post or a fetch from a page (which carries Origin)
    cannot reset state; curl-style calls and JSON still work."""
    client = boto_client(ecrd)
    client.create_repository(repositoryName="survivor")
    for path in ("/_ecrd/reset", "/moto-api/reset", "/_ecrd/gc", "/_ecrd/lifecycle/evaluate"):
        for content_type in ("text/plain", "application/x-www-form-urlencoded",
                             "multipart/form-data; boundary=x"):
            status, _, raw = http("POST", f"{ecrd.url}{path}", body=b"{}",
                                  headers={"Content-Type": content_type})
            assert status == 415, (path, content_type, raw)
        status, _, raw = http("POST", f"{ecrd.url}{path}", body=b"{}",
                              headers={**JSON, "Origin": "http://evil.example"})
        assert status == 403, (path, raw)
    # urllib's default for a body is a form encoding: refused too.
    status, _, _ = http("POST", f"{ecrd.url}/_ecrd/clock", body=b'{"offsetSeconds": 60}')
    assert status == 415
    names = [r["repositoryName"] for r in client.describe_repositories()["repositories"]]
    assert names == ["survivor"]
    assert json.loads(http("GET", f"{ecrd.url}/_ecrd/clock")[2])["offsetSeconds"] == 0
    status, _, _ = http("POST", f"{ecrd.url}/_ecrd/reset")
    assert status == 200
    assert client.describe_repositories()["repositories"] == []


def test_clock_refuses_times_it_cannot_represent(ecrd):
    client = boto_client(ecrd)
    client.create_repository(repositoryName="still-here")
    for body in (b'{"now": "9999-12-31T23:59:59Z"}', b'{"now": "2200-01-01T00:00:00Z"}',
                 b'{"now": "1969-12-31T23:59:59Z"}', b'{"offsetSeconds": 1e12}',
                 b'{"offsetSeconds": -1e10}'):
        status, _, raw = http("POST", f"{ecrd.url}/_ecrd/clock", body=body, headers=JSON)
        assert status == 400, (body, raw)
        assert "before 2200-01-01T00:00:00Z" in json.loads(raw)["error"], raw
    status, _, raw = http("POST", f"{ecrd.url}/_ecrd/clock", body=b'{"offsetSeconds": 1.5}',
                          headers=JSON)
    assert status == 400 and b"whole number" in raw, raw
    assert json.loads(http("GET", f"{ecrd.url}/_ecrd/clock")[2])["offsetSeconds"] == 0
    names = [r["repositoryName"] for r in client.describe_repositories()["repositories"]]
    assert names == ["still-here"]


def test_operator_token(spawn):
    server = spawn(env={"ECRD_OPERATOR_TOKEN": "s3cret"})
    status, _, _ = http("GET", f"{server.url}/_ecrd/health")
    assert status == 200
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        status, h, _ = http("POST", f"{server.url}/_ecrd/reset", headers=headers)
        assert status == 401
        lower = {k.lower(): v for k, v in h.items()}
        assert lower.get("www-authenticate", "").startswith("Bearer"), h
    status, _, _ = http("POST", f"{server.url}/_ecrd/reset",
                        headers={"Authorization": "Bearer s3cret"})
    assert status == 200


def test_sigterm_is_a_graceful_exit(spawn):
    server = spawn()
    client = boto_client(server)
    client.create_repository(repositoryName="bye")
    assert server.terminate(signal.SIGTERM) == 0
    assert "panic" not in server.output()


def test_sigint_is_a_graceful_exit(spawn):
    server = spawn()
    assert server.terminate(signal.SIGINT) == 0


def test_concurrent_clients(ecrd):
    errors = []

    def worker(n: int) -> None:
        try:
            client = boto_client(ecrd)
            for i in range(5):
                client.create_repository(repositoryName=f"w{n}/r{i}")
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    listed = boto_client(ecrd).describe_repositories()["repositories"]
    assert len(listed) == 40


def test_data_dir_survives_a_restart(spawn, tmp_path):
    data = tmp_path / "ecrd-data"
    first = spawn(args=["--data-dir", str(data)])
    assert json.loads(http("GET", f"{first.url}/_ecrd/health")[2])["backend"] == "disk"
    client = boto_client(first)
    created = client.create_repository(
        repositoryName="kept", tags=[{"Key": "k", "Value": "v"}]
    )["repository"]
    client.put_account_setting(name="REGISTRY_POLICY_SCOPE", value="V1")
    assert first.terminate(signal.SIGTERM) == 0

    second = spawn(env={"ECRD_DATA_DIR": str(data)})
    client = boto_client(second)
    [repo] = client.describe_repositories()["repositories"]
    assert repo["repositoryArn"] == created["repositoryArn"]
    assert repo["createdAt"] == created["createdAt"]
    assert client.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"] == [
        {"Key": "k", "Value": "v"}
    ]
    assert client.get_account_setting(name="REGISTRY_POLICY_SCOPE")["value"] == "V1"


def test_security_md_names_only_tests_that_exist():
    """Every `file::test` SECURITY.md cites as the proof of a claim exists."""
    import re
    root = Path(__file__).resolve().parents[2]
    text = (root / "SECURITY.md").read_text()
    cited = re.findall(r"`((?:src|tests)/[\w/.]+)::(\w+)`", text)
    assert len(cited) >= 30, cited
    missing = []
    for path, name in cited:
        source = (root / path).read_text()
        pattern = rf"\bdef {name}\(" if path.endswith(".py") else rf"\bfn {name}\("
        if not re.search(pattern, source):
            missing.append(f"{path}::{name}")
    assert not missing, missing
