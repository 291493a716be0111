# One image for both services; the command picks one (compose.yml, deploy/base/*.yaml).
#   docker build --build-arg REVISION=$(git rev-parse HEAD) -t feedguard:0.1.0 .
# Dependencies come from requirements.lock (every version pinned; `make lock`
# refreshes it from pyproject.toml), the project itself without dependencies.
FROM python:3.11-slim

ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="feedguard" \
      org.opencontainers.image.description="Detects third-party data feed outages (feedguard-exporter) and runs the outage runbook (feedguard-responder)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.documentation="docs/deploy.md"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The service user (uid 10001, what deploy/ runs as) owns the two writable
# places: /data (the responder's SQLite store; a new volume mounted there
# takes this owner) and /run/feedguard (compose's generated secrets).
RUN groupadd --system --gid 10001 feedguard \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin feedguard \
 && mkdir -p /data /run/feedguard \
 && chown 10001:10001 /data /run/feedguard

WORKDIR /app
COPY requirements.lock ./
RUN pip install --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY feedguard ./feedguard
COPY exporter ./exporter
COPY responder ./responder
# --no-deps: everything it needs came from the lock above; pip check proves it.
RUN pip install --no-deps . && pip check
COPY config ./config

# Numeric, so Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
EXPOSE 9816 9817
# The exporter's /healthz by default; compose gives each service its own check.
HEALTHCHECK --interval=30s --timeout=10s --start-period=10s --retries=3 \
  CMD ["python", "-m", "feedguard.core.healthcheck"]
CMD ["feedguard-exporter", "--config", "config/exporter.yml", "--listen", "0.0.0.0:9816"]
