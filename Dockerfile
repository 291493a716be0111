# One image for both services; compose.yml picks the command.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY feedguard ./feedguard
COPY exporter ./exporter
COPY responder ./responder
RUN pip install --no-cache-dir ".[all]" && useradd --system --uid 10001 feedguard
COPY config ./config
USER feedguard
EXPOSE 9816 9817
CMD ["feedguard-exporter", "--config", "config/exporter.yml", "--listen", "0.0.0.0:9816"]
