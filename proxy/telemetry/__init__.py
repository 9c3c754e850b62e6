"""OpenTelemetry traces of finished requests (the optional ``[otel]`` extra).

``spans`` turns a scored outcome into span plans (plain data, no OpenTelemetry import);
``tracing`` imports the SDK, only when telemetry is enabled, and emits those plans.
"""
