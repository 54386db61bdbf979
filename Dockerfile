# syntax=docker/dockerfile:1
FROM python:3.11-slim AS build
WORKDIR /src
# The locked dependency set, every file checked against its hash (the same lock the README and CI
# install from, runtime part only), then the bot itself without resolving anything again.
COPY requirements.txt ./
RUN python -m venv /venv && /venv/bin/pip install --no-cache-dir --require-hashes -r requirements.txt
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY cogs ./cogs
RUN /venv/bin/pip install --no-cache-dir --no-deps --no-build-isolation .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 lipsync
COPY --from=build /venv /venv
# `docker run --env-file .env` puts every line of .env over these, so `.env.example` leaves the
# four settings below commented out (a copy changes none of them), and the working directory is
# the volume, so a relative path an operator does set (`data/...`) still lands on it.
ENV PATH="/venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    DATABASE_PATH=/data/lipsync-bot.sqlite3 \
    WORK_DIR=/data/work \
    METRICS_HOST=0.0.0.0 \
    METRICS_PORT=9108
RUN mkdir -p /data && chown lipsync:lipsync /data
VOLUME ["/data"]
USER lipsync
# matplotlib's font cache, built once here, so the first usage chart doesn't build it.
RUN python -c "import matplotlib.font_manager"
WORKDIR /data
# Prometheus metrics on /metrics and the health check on /healthz (docs/operators.md).
EXPOSE 9108
# Healthy: the Discord gateway is connected, the database takes a write, the poller is alive. The
# probe reads the bot's own settings, so it asks the port the bot serves (and says so when it serves none).
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 CMD ["python", "-m", "bot.ops.probe"]
CMD ["lipsync-bot", "run"]
