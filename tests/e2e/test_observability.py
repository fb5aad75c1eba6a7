"""Observability as an operator meets it: `/_ecrd/metrics` read by the
Prometheus project's own text parser (prometheus_client) after real boto3
calls and a registry push and pull with oras-py; `--log-format json` lines
that parse and carry the request id the answer's `x-amzn-RequestId` had;
and no ANSI colour codes when the log goes to a pipe.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time

import pytest

from conftest import boto_client, find_binary, free_port, http, run_aws

ESC = "\x1b["


def header(headers: dict, name: str) -> str:
    """A response header by name, whatever its case on the wire."""
    return {k.lower(): v for k, v in headers.items()}[name.lower()]


def scrape(server) -> dict:
    """The exposition as {family name: family}, parsed by prometheus_client."""
    parser = pytest.importorskip(
        "prometheus_client.parser", reason="pip package prometheus-client (.ci/run installs it)")
    status, headers, body = http("GET", f"{server.url}/_ecrd/metrics")
    assert status == 200, body
    assert header(headers, "Content-Type").startswith("text/plain; version=0.0.4"), headers
    return {f.name: f for f in parser.text_string_to_metric_families(body.decode())}


def value(families: dict, family: str, sample: str | None = None, **labels) -> float:
    """The one sample of `family` (named `sample`, default the family's own
    name) whose labels include `labels`; 0 when there is none yet."""
    if family not in families:
        return 0.0
    found = [s for s in families[family].samples
             if s.name == (sample or family) and labels.items() <= s.labels.items()]
    assert len(found) <= 1, found
    return found[0].value if found else 0.0


def test_metrics_after_boto3_calls_and_an_oras_push(ecrd, tmp_path):
    oras_client = pytest.importorskip("oras.client", reason="pip package oras (.ci/run installs it)")
    before = scrape(ecrd)
    boto = boto_client(ecrd)
    repo = "obs/artifacts"
    boto.create_repository(repositoryName=repo)
    for _ in range(2):
        boto.describe_repositories()
    with pytest.raises(boto.exceptions.RepositoryNotFoundException):
        boto.describe_images(repositoryName="obs/missing")

    host = f"localhost:{ecrd.port}"
    password = run_aws(ecrd, "ecr", "get-login-password").stdout.strip()
    client = oras_client.OrasClient(hostname=host, insecure=True, auth_backend="basic")
    client.login(username="AWS", password=password, hostname=host)
    content = b'{"packages": ["a", "b", "c"]}\n'
    (tmp_path / "sbom.json").write_bytes(content)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert client.push(target=f"{host}/{repo}:sbom", files=["sbom.json"]).status_code == 201
    finally:
        os.chdir(cwd)
    files = client.pull(target=f"{host}/{repo}:sbom", outdir=str(tmp_path / "out"))
    assert open(files[0], "rb").read() == content

    after = scrape(ecrd)
    # prometheus_client names a counter family without its `_total`.
    assert after["ecrd_requests"].type == "counter"
    assert after["ecrd_request_duration_seconds"].type == "histogram"

    def moved(family, sample=None, **labels):
        return value(after, family, sample, **labels) - value(before, family, sample, **labels)

    requests = dict(family="ecrd_requests", sample="ecrd_requests_total")
    assert moved(**requests, plane="api", operation="CreateRepository", status="200") == 1
    assert moved(**requests, plane="api", operation="DescribeRepositories", status="200") == 2
    assert moved(**requests, plane="api", operation="DescribeImages", status="400") == 1
    assert moved(**requests, plane="registry", operation="manifest_put", status="201") == 1
    assert moved(**requests, plane="registry", operation="manifest_get", status="200") >= 1
    assert moved("ecrd_request_duration_seconds", "ecrd_request_duration_seconds_count",
                 plane="api", operation="DescribeRepositories", status="200") == 2
    # oras pushes the file and an empty config; it pulls the file back.
    pushed = moved("ecrd_registry_pushed_bytes", "ecrd_registry_pushed_bytes_total", kind="blob")
    assert pushed >= len(content), pushed
    assert moved("ecrd_registry_pushed_bytes", "ecrd_registry_pushed_bytes_total",
                 kind="manifest") > 0
    assert moved("ecrd_registry_pulled_bytes", "ecrd_registry_pulled_bytes_total",
                 kind="blob") >= len(content)
    assert value(after, "ecrd_repositories") == 1
    assert value(after, "ecrd_images") == 1
    assert value(after, "ecrd_blobs") >= 1
    assert value(after, "ecrd_upload_sessions") == 0
    for task in ("lifecycle", "garbage_collection", "replication", "signing", "scanning"):
        assert ("task", task) in {
            (k, v) for s in after["ecrd_background_runs"].samples for k, v in s.labels.items()}

    # A lifecycle run through its operator endpoint is a background run.
    status, _, body = http("POST", f"{ecrd.url}/_ecrd/lifecycle/evaluate")
    assert status == 200, body
    last = scrape(ecrd)
    assert value(last, "ecrd_background_runs", "ecrd_background_runs_total", task="lifecycle") \
        == value(after, "ecrd_background_runs", "ecrd_background_runs_total", task="lifecycle") + 1

    # Labels never carry a repository name, a digest or a made-up path.
    http("GET", f"{ecrd.url}/_ecrd/no-such/{repo}")
    status, _, body = http("GET", f"{ecrd.url}/_ecrd/metrics")
    text = body.decode()
    for leaked in (repo, "sha256:", "no-such"):
        assert leaked not in text, leaked


class PipedServer:
    """`ecrd serve` with its standard output a pipe, read line by line."""

    def __init__(self, *args: str):
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ECRD_")}
        env["ECRD_LOG"] = "info"
        self.proc = subprocess.Popen(
            [str(find_binary()), "serve", "--host", "127.0.0.1", "--port", str(self.port), *args],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if http("GET", f"{self.url}/_ecrd/health", timeout=1.0)[0] == 200:
                    return
            except OSError:
                time.sleep(0.02)
        self.close()
        raise RuntimeError("ecrd did not start:\n" + "".join(self.lines))

    def _read(self):
        for raw in self.proc.stdout:
            self.lines.append(raw.decode(errors="replace"))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> str:
        """Stops the server (flushing its log) and returns everything it wrote."""
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.reader.join(timeout=10)
        return "".join(self.lines)


@pytest.fixture
def piped():
    started: list[PipedServer] = []

    def start(*args: str) -> PipedServer:
        server = PipedServer(*args)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


def request_ids_of(line: dict) -> set[str]:
    return {s["request_id"] for s in line.get("spans", []) if "request_id" in s}


def test_json_log_lines_carry_the_request_id_of_the_answer(piped):
    server = piped("--log-format", "json")
    boto = boto_client(server)
    ok = boto.create_repository(repositoryName="obs/json")
    ok_id = ok["ResponseMetadata"]["RequestId"]
    with pytest.raises(boto.exceptions.RepositoryNotFoundException) as missing:
        boto.describe_repositories(repositoryNames=["obs/none"])
    error_id = missing.value.response["ResponseMetadata"]["RequestId"]
    status, registry_headers, _ = http("GET", f"{server.url}/v2/")
    assert status == 401
    registry_id = header(registry_headers, "x-amzn-RequestId")
    status, operator_headers, _ = http("POST", f"{server.url}/_ecrd/clock", b"not json",
                                       {"Content-Type": "application/json"})
    assert status == 400
    operator_id = header(operator_headers, "x-amzn-RequestId")
    output = server.close()

    assert ESC not in output
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    by_id: dict[str, list[dict]] = {}
    for line in lines:
        for request_id in request_ids_of(line):
            by_id.setdefault(request_id, []).append(line)
    assert [line["fields"]["message"] for line in by_id[ok_id]] == ["done"]
    failed = by_id[error_id]
    assert failed[0]["fields"]["message"] == "failed"
    assert failed[0]["fields"]["error"] == "RepositoryNotFoundException"
    assert "obs/none" in failed[0]["fields"]["error_message"]
    assert failed[0]["fields"]["status"] == 400
    assert by_id[registry_id][0]["fields"]["status"] == 401
    assert by_id[operator_id][0]["fields"]["status"] == 400
    assert len({ok_id, error_id, registry_id, operator_id}) == 4


def test_text_log_has_no_colour_codes_on_a_pipe(piped):
    server = piped()  # text is the default
    boto = boto_client(server)
    created = boto.create_repository(repositoryName="obs/text")
    request_id = created["ResponseMetadata"]["RequestId"]
    with pytest.raises(boto.exceptions.RepositoryNotFoundException):
        boto.describe_repositories(repositoryNames=["obs/none"])
    output = server.close()
    assert ESC not in output, repr(output[:500])
    line = next(line for line in output.splitlines() if request_id in line)
    assert f"request_id={request_id}" in line and "CreateRepository" in line and " done " in line
