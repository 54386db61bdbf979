# syntax=docker/dockerfile:1
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY cogs ./cogs
RUN python -m venv /venv && /venv/bin/pip install --no-cache-dir .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 lipsync
COPY --from=build /venv /venv
ENV PATH="/venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    DATABASE_PATH=/data/lipsync-bot.sqlite3 \
    WORK_DIR=/data/work \
    METRICS_HOST=0.0.0.0 \
    METRICS_PORT=9108
RUN mkdir -p /data && chown lipsync:lipsync /data
VOLUME ["/data"]
USER lipsync
WORKDIR /home/lipsync
# Prometheus metrics on /metrics and the health check on /healthz (docs/operators.md).
EXPOSE 9108
# Healthy: the Discord gateway is connected, the database takes a write, the poller is alive.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 CMD ["python", "-m", "bot.ops.probe"]
CMD ["lipsync-bot", "run"]
