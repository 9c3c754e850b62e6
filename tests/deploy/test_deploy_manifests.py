"""The deployment files validate offline and agree with the proxy they deploy.

Kubernetes manifests (deploy/kubernetes/*.yaml) are checked against the Kubernetes JSON
schemas that the ``kubernetes-validate`` package ships (strict: unknown fields fail), and
docker-compose.yaml against the Compose Specification schema that ``check-jsonschema``
vendors, with ``jsonschema``. Both run with outgoing connections refused, so nothing is
fetched. Then: probes hit /ready and /health on port 4000 (and the readiness command really
passes against a running proxy with the master key, and fails without it or without Redis),
the ConfigMap's config.yaml passes ``model-manager check``, the replicas share one
REDIS_URL, and no secret value sits in the Deployment.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import kubernetes_validate
import openai
import pytest
import yaml
from support.paths import REPO
from support.redis_server import RedisServer
from support.servers import ProxyProcess, free_port

KUBE_DIR = REPO / "deploy" / "kubernetes"
COMPOSE_FILE = REPO / "docker-compose.yaml"
DEPLOY_CONFIG = REPO / "deploy" / "config.yaml"
NGINX_CONF = REPO / "deploy" / "nginx.conf"
PROXY_SERVICES = ("proxy-1", "proxy-2")
# The oldest Kubernetes minor still common in managed clusters, and the newest shipped schemas.
KUBE_VERSIONS = ("1.29", kubernetes_validate.utils.latest_version())
ENV_PREFIX = "os.environ/"
SECRET_NAMES = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|REDIS_URL")
TEST_ENV = {
    "MODEL_MANAGER_MASTER_KEY": "test-master-key",
    "OPENAI_API_KEY": "sk-test",
    "ANTHROPIC_API_KEY": "sk-ant-test",
}
MASTER_ONLY = {"MODEL_MANAGER_MASTER_KEY": TEST_ENV["MODEL_MANAGER_MASTER_KEY"]}
AUTH = {"Authorization": f"Bearer {TEST_ENV['MODEL_MANAGER_MASTER_KEY']}"}


def env_refs(config_text: str) -> set[str]:
    """The NAME of every ``os.environ/NAME`` value in a config (comments aside)."""
    found: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str) and node.startswith(ENV_PREFIX):
            found.add(node.removeprefix(ENV_PREFIX))

    walk(yaml.safe_load(config_text))
    return found


def kube_documents() -> list[tuple[str, dict[str, Any]]]:
    """Every non-empty YAML document under deploy/kubernetes, with its file name."""
    documents = []
    for path in sorted(KUBE_DIR.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if document:
                documents.append((path.name, document))
    return documents


def kube(kind: str, name: str) -> dict[str, Any]:
    """The one manifest of this kind and name."""
    found = [d for _, d in kube_documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} manifests"
    return found[0]


def proxy_container() -> dict[str, Any]:
    containers = kube("Deployment", "model-manager")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return data


def compose_schema() -> dict[str, Any]:
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    schema: dict[str, Any] = json.loads(vendor.joinpath("compose-spec.json").read_text("utf-8"))
    return schema


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Refuse every outgoing connection: schema validation must not fetch anything."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access during offline validation: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    yield


# --- schemas -----------------------------------------------------------------------------


def test_every_kubernetes_manifest_is_expected() -> None:
    kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for _, d in kube_documents())
    assert kinds == [
        "ConfigMap/model-manager-config",
        "Deployment/model-manager",
        "Deployment/model-manager-redis",
        "HorizontalPodAutoscaler/model-manager",
        "PodDisruptionBudget/model-manager",
        "Secret/model-manager-secrets",
        "Service/model-manager",
        "Service/model-manager-redis",
    ]


@pytest.mark.usefixtures("offline")
@pytest.mark.parametrize("version", KUBE_VERSIONS)
def test_kubernetes_manifests_validate_against_the_schemas(version: str) -> None:
    for filename, document in kube_documents():
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = ".".join(str(part) for part in error.path)
            pytest.fail(f"{filename}: {document['kind']} at {where}: {error.message} (k8s {version})")


@pytest.mark.usefixtures("offline")
def test_kubernetes_validation_is_not_vacuous() -> None:
    """A misspelt field and a wrong type both fail, and an unknown kind has no schema."""
    deployment = kube("Deployment", "model-manager")
    misspelt = json.loads(json.dumps(deployment))
    container = misspelt["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError, match="readinesProbe"):
        kubernetes_validate.validate(misspelt, KUBE_VERSIONS[-1], strict=True)
    wrong_type = json.loads(json.dumps(deployment))
    wrong_type["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong_type, KUBE_VERSIONS[-1], strict=True)
    with pytest.raises(kubernetes_validate.utils.SchemaNotFoundError):
        kubernetes_validate.validate({**deployment, "kind": "Deploymnt"}, KUBE_VERSIONS[-1])


@pytest.mark.usefixtures("offline")
def test_compose_file_validates_against_the_compose_spec() -> None:
    schema = compose_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(compose()))
    assert not errors, "; ".join(f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors)


@pytest.mark.usefixtures("offline")
def test_compose_validation_is_not_vacuous() -> None:
    validator = jsonschema.Draft202012Validator(compose_schema())
    broken = compose()
    broken["services"]["redis"]["imag"] = broken["services"]["redis"].pop("image")
    assert any("imag" in error.message for error in validator.iter_errors(broken))


# --- the Kubernetes Deployment -------------------------------------------------------------


def test_probes_point_to_ready_and_health_on_port_4000() -> None:
    container = proxy_container()
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": 4000}
    assert "--port" in container["command"]
    assert container["command"][container["command"].index("--port") + 1] == "4000"
    readiness = " ".join(container["readinessProbe"]["exec"]["command"])
    assert "http://127.0.0.1:4000/ready" in readiness
    for probe in ("livenessProbe", "startupProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] == "/health"
        assert ports.get(get["port"], get["port"]) == 4000


def test_deployment_reads_config_from_the_configmap() -> None:
    pod = kube("Deployment", "model-manager")["spec"]["template"]["spec"]
    container = proxy_container()
    command = container["command"]
    config_path = Path(command[command.index("--config") + 1])
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == str(config_path.parent))
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    configmap = kube("ConfigMap", volume["configMap"]["name"])
    assert config_path.name in configmap["data"]


def test_configmap_config_is_the_deploy_config() -> None:
    """One config for compose and Kubernetes: the ConfigMap embeds deploy/config.yaml."""
    embedded = kube("ConfigMap", "model-manager-config")["data"]["config.yaml"]
    assert embedded == DEPLOY_CONFIG.read_text(encoding="utf-8")


def model_manager() -> str:
    """The console script installed next to this interpreter."""
    script = Path(sys.executable).with_name("model-manager")
    return str(script) if script.exists() else "model-manager"


def check(config: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in TEST_ENV and k != "REDIS_URL"}
    return subprocess.run(
        [model_manager(), "check", "--config", str(config), *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_configmap_config_passes_model_manager_check(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(kube("ConfigMap", "model-manager-config")["data"]["config.yaml"], "utf-8")
    full = check(config, TEST_ENV, "--strict")
    assert full.returncode == 0, full.stdout + full.stderr
    assert "ok (4 models" in full.stdout
    # Provider keys are optional: without them the proxy runs on the other models.
    bare = check(config, {"MODEL_MANAGER_MASTER_KEY": "k"})
    assert bare.returncode == 0, bare.stdout + bare.stderr
    assert "unavailable: gpt-4o-mini" in bare.stdout
    assert "unavailable: claude-sonnet" in bare.stdout
    # The master key is not optional: without it the proxy refuses to start, saying why.
    keyless = check(config, {})
    assert keyless.returncode == 2
    assert "MODEL_MANAGER_MASTER_KEY is not set" in keyless.stderr


def test_no_secret_value_is_inline_in_the_deployment() -> None:
    secret = kube("Secret", "model-manager-secrets")
    secret_keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
    container = proxy_container()
    env = {entry["name"]: entry for entry in container["env"]}
    assert all("value" not in entry for entry in env.values()), "literal env values"
    for name, entry in env.items():
        ref = entry["valueFrom"]["secretKeyRef"]
        assert ref["name"] == "model-manager-secrets"
        assert ref["key"] in secret_keys or ref.get("optional") is True, name
    # Every os.environ/NAME in the config is provided from the Secret.
    config_text = kube("ConfigMap", "model-manager-config")["data"]["config.yaml"]
    assert env_refs(config_text) <= set(env)
    assert {"MODEL_MANAGER_MASTER_KEY", "REDIS_URL"} <= secret_keys
    # No value of the Secret appears anywhere in the Deployment or the ConfigMap.
    deployment_text = (KUBE_DIR / "deployment.yaml").read_text(encoding="utf-8")
    for value in secret.get("stringData", {}).values():
        assert value not in deployment_text
        assert value not in config_text
    # And every credential in the config is a reference.
    config = yaml.safe_load(config_text)
    for entry in config["model_list"]:
        assert entry["litellm_params"]["api_key"].startswith(ENV_PREFIX), entry
    assert config["server"]["master_key"].startswith("os.environ/")


def test_service_hpa_and_redis_point_at_what_exists() -> None:
    deployment = kube("Deployment", "model-manager")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = kube("Service", "model-manager")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"][0]["targetPort"] in {p["name"] for p in proxy_container()["ports"]}
    hpa = kube("HorizontalPodAutoscaler", "model-manager")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "model-manager")
    assert hpa["spec"]["minReplicas"] >= 2
    assert "cpu" in proxy_container()["resources"]["requests"]  # utilization needs a request
    pdb = kube("PodDisruptionBudget", "model-manager")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    redis_url = kube("Secret", "model-manager-secrets")["stringData"]["REDIS_URL"]
    redis_service = kube("Service", "model-manager-redis")
    host, port = redis_service["metadata"]["name"], redis_service["spec"]["ports"][0]["port"]
    assert redis_url == f"redis://{host}:{port}/0"
    redis_pod = kube("Deployment", "model-manager-redis")["spec"]["template"]["metadata"]["labels"]
    assert redis_service["spec"]["selector"].items() <= redis_pod.items()


# --- docker-compose.yaml -------------------------------------------------------------------


def test_compose_replicas_share_one_redis_url() -> None:
    services = compose()["services"]
    urls = {services[name]["environment"]["REDIS_URL"] for name in PROXY_SERVICES}
    assert urls == {"redis://redis:6379/0"}
    assert "redis" in services
    for name in PROXY_SERVICES:
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_compose_proxies_run_the_deploy_config_with_secrets_from_the_environment() -> None:
    services = compose()["services"]
    config_text = DEPLOY_CONFIG.read_text(encoding="utf-8")
    for name in PROXY_SERVICES:
        service = services[name]
        assert "./deploy/config.yaml:/config/config.yaml:ro" in service["volumes"]
        command = service["command"]
        assert command[command.index("--config") + 1] == "/config/config.yaml"
        assert command[command.index("--port") + 1] == "4000"
        env = service["environment"]
        assert env_refs(config_text) <= set(env)
        for var in env_refs(config_text):
            # Interpolated from the host, or passed through (null): never a literal value.
            assert env[var] is None or str(env[var]).startswith("${" + var), var
        assert "http://127.0.0.1:4000/ready" in " ".join(service["healthcheck"]["test"])


def test_compose_load_balancer_spreads_over_both_replicas() -> None:
    lb = compose()["services"]["lb"]
    assert lb["image"].startswith("nginx:")
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in lb["volumes"]
    assert set(lb["depends_on"]) == set(PROXY_SERVICES)
    conf = NGINX_CONF.read_text(encoding="utf-8")
    upstream = re.search(r"upstream model_manager \{(.*?)\}", conf, re.S)
    assert upstream is not None
    servers = re.findall(r"^\s*server\s+([\w.-]+):(\d+)", upstream.group(1), re.M)
    assert sorted(servers) == sorted((name, "4000") for name in PROXY_SERVICES)
    assert "proxy_buffering off;" in conf  # streamed answers are relayed as they come
    max_body = int(re.search(r"client_max_body_size (\d+)m;", conf).group(1))  # type: ignore[union-attr]
    assert max_body * 1024 * 1024 > 4 * 1024 * 1024  # above server.max_body_bytes' default


# --- the readiness command against a real proxy ---------------------------------------------


def run_probe(command: list[str], port: int, env: dict[str, str]) -> int:
    """Run a probe command as the container would, against the proxy on ``port``."""
    python, *rest = command
    assert python == "python"
    args = [sys.executable, *(arg.replace("127.0.0.1:4000", f"127.0.0.1:{port}") for arg in rest)]
    done = subprocess.run(args, env={**os.environ, **env}, capture_output=True, timeout=30, check=False)
    return done.returncode


@pytest.fixture
def no_provider_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Proxies started here get no provider key: real providers stay unavailable, so no
    request can leave the machine."""
    for name in TEST_ENV:
        if name != "MODEL_MANAGER_MASTER_KEY":
            monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("no_provider_keys")
def test_readiness_commands_pass_only_with_the_key_and_redis(
    tmp_path: Path, own_redis_server: RedisServer
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(DEPLOY_CONFIG.read_text(encoding="utf-8"), encoding="utf-8")
    env = {**MASTER_ONLY, "REDIS_URL": own_redis_server.url}
    kube_probe = proxy_container()["readinessProbe"]["exec"]["command"]
    compose_probe = compose()["services"]["proxy-1"]["healthcheck"]["test"][1:]  # after CMD
    with ProxyProcess(config, env=env, cwd=tmp_path) as proxy:
        assert httpx.get(f"{proxy.url}/health").status_code == 200  # liveness: no key needed
        for probe in (kube_probe, compose_probe):
            assert run_probe(probe, proxy.port, env) == 0
            assert run_probe(probe, proxy.port, {**env, "MODEL_MANAGER_MASTER_KEY": "wrong"}) != 0
        own_redis_server.stop()
        for probe in (kube_probe, compose_probe):
            assert run_probe(probe, proxy.port, env) != 0  # 503: store unreachable
        assert httpx.get(f"{proxy.url}/health").status_code == 200  # alive all the same


# --- the compose topology on loopback: nginx with deploy/nginx.conf, two proxies, one Redis --


NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def process_requests(proxy: ProxyProcess) -> float:
    text = httpx.get(f"{proxy.url}/metrics", headers=AUTH).text
    match = re.search(r"^model_manager_process_requests_total (\S+)$", text, re.M)
    assert match is not None, text[-2000:]
    return float(match.group(1))


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx-light)")
@pytest.mark.usefixtures("no_provider_keys")
def test_nginx_config_balances_two_replicas_sharing_redis(
    tmp_path: Path, own_redis_server: RedisServer
) -> None:
    assert NGINX is not None
    env = {**MASTER_ONLY, "REDIS_URL": own_redis_server.url}
    proxies = []
    for name in PROXY_SERVICES:
        config = tmp_path / f"{name}.yaml"
        proxy = ProxyProcess(config, env=env, cwd=tmp_path)
        # Each replica serves its own simulated models: point them at its port.
        text = DEPLOY_CONFIG.read_text(encoding="utf-8").replace(":4000/", f":{proxy.port}/")
        config.write_text(text, encoding="utf-8")
        proxies.append(proxy)
    lb_port = free_port()
    conf = NGINX_CONF.read_text(encoding="utf-8").replace("listen 80;", f"listen 127.0.0.1:{lb_port};")
    for name, proxy in zip(PROXY_SERVICES, proxies, strict=True):
        conf = conf.replace(f"server {name}:4000", f"server 127.0.0.1:{proxy.port}")
    (tmp_path / "nginx.conf").write_text(conf, encoding="utf-8")
    globals_ = f"pid {tmp_path}/nginx.pid; error_log {tmp_path}/nginx-error.log; daemon off;"
    nginx_args = [NGINX, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-g", globals_]
    with contextlib.ExitStack() as stack:
        for proxy in proxies:
            stack.enter_context(proxy)
        lb = subprocess.Popen(nginx_args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stack.callback(lambda: (lb.terminate(), lb.wait(10)))
        base = f"http://127.0.0.1:{lb_port}"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            time.sleep(0.05)
        assert httpx.get(f"{base}/ready", timeout=5).status_code == 401  # the key is required
        assert httpx.get(f"{base}/ready", headers=AUTH, timeout=5).json()["store"] == "RedisStore"
        client = openai.OpenAI(
            base_url=f"{base}/v1",
            api_key=TEST_ENV["MODEL_MANAGER_MASTER_KEY"],
            max_retries=0,
            default_headers={"X-Agent": "deploy-test", "X-Model-Manager-Pin": "false"},
        )
        with client:
            for _ in range(6):
                reply = client.chat.completions.create(
                    model="sim-fast", messages=[{"role": "user", "content": "hi"}]
                )
                assert reply.choices[0].message.content
            with client.chat.completions.stream(
                model="sim-fast", messages=[{"role": "user", "content": "hi"}]
            ) as stream:
                text = "".join(
                    event.delta for event in stream if event.type == "content.delta"
                )
            assert text
        served = [process_requests(proxy) for proxy in proxies]
        assert sum(served) == 7
        assert all(count > 0 for count in served), served  # both replicas answered
