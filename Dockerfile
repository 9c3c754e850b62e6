# Model Manager: OpenAI-compatible routing proxy.
# docker build -t model-manager .
# docker run -p 4000:4000 -v "$PWD/config.yaml:/config/config.yaml:ro" -e REDIS_URL=redis://redis:6379/0 model-manager
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True \
    LITELLM_OFFLINE_MODE=true \
    LITELLM_TELEMETRY_DISABLED=true \
    MODEL_MANAGER_STATE_FILE=/data/model-manager-state.json

WORKDIR /app
COPY pyproject.toml README.md ./
COPY proxy ./proxy
COPY policies ./policies
COPY storage ./storage
RUN pip install --no-cache-dir . \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin modelmanager \
    && mkdir -p /config /data \
    && chown modelmanager /data

USER 10001
# The embedded store (no REDIS_URL) keeps its state file in the working directory.
WORKDIR /data
EXPOSE 4000
HEALTHCHECK --interval=30s --timeout=3s CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:4000/health', timeout=2)"]
CMD ["model-manager", "serve", "--config", "/config/config.yaml", "--host", "0.0.0.0", "--port", "4000"]
