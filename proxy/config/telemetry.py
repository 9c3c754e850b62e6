"""The ``telemetry`` section of config.yaml: OpenTelemetry traces, off unless enabled.

``enabled`` (default: whether ``otlp_endpoint`` is given) turns on one span per request;
``otlp_endpoint`` is the OTLP/HTTP traces URL (e.g. ``http://localhost:4318/v1/traces``;
unset: the exporter's own default and ``OTEL_EXPORTER_OTLP_*`` variables); ``service_name``
names the service in the traces. Enabling it needs the ``[otel]`` extra installed.
"""

from __future__ import annotations

from dataclasses import dataclass

from proxy.config.reader import ConfigError, Section

SERVICE_NAME = "model-manager"


@dataclass(frozen=True, slots=True)
class TelemetrySettings:
    enabled: bool = False
    otlp_endpoint: str | None = None
    service_name: str = SERVICE_NAME


def parse_telemetry(section: Section) -> TelemetrySettings:
    """Validated telemetry settings; unknown keys and a non-HTTP endpoint are ConfigErrors."""
    endpoint = section.string("otlp_endpoint") or None
    if endpoint is not None and not endpoint.startswith(("http://", "https://")):
        raise ConfigError(f"{section.key_path('otlp_endpoint')}: must be an http(s) URL, got {endpoint!r}")
    settings = TelemetrySettings(
        enabled=section.boolean("enabled", endpoint is not None),
        otlp_endpoint=endpoint,
        service_name=section.string("service_name", SERVICE_NAME) or SERVICE_NAME,
    )
    section.finish()
    return settings
