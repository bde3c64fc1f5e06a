# One image for every FlowForge service; each target only changes the command.
# The web UI's bundle, built from the lockfile; the catalog serves it at / (FLOWFORGE_WEB_DIST).
FROM node:20-slim AS web
WORKDIR /web
COPY services/web/package.json services/web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY services/web ./
RUN npx vite build

FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
# libltdl: the SQL Server driver's ODBC libraries (in the mssql-python-odbc wheel) load it.
RUN apt-get update && apt-get install -y --no-install-recommends libltdl7 \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml constraints.txt ./
COPY shared shared
COPY services services
COPY flowforge flowforge
RUN pip install --no-cache-dir -c constraints.txt . \
    && useradd --uid 10001 --create-home flowforge
USER flowforge
ENV FLOWFORGE_DATA_DIR=/home/flowforge/data
COPY --from=web /web/dist /app/web
ENV FLOWFORGE_WEB_DIST=/app/web

FROM base AS migrate
CMD ["flowforge", "db", "upgrade"]

FROM base AS catalog
EXPOSE 8000
CMD ["flowforge", "service", "catalog", "--host", "0.0.0.0", "--port", "8000"]

FROM base AS orchestrator
EXPOSE 8000
CMD ["flowforge", "service", "orchestrator", "--host", "0.0.0.0", "--port", "8000"]

FROM base AS lineage
EXPOSE 8000
CMD ["flowforge", "service", "lineage", "--host", "0.0.0.0", "--port", "8000"]

FROM base AS ingest-worker
CMD ["flowforge", "worker", "ingest", "--concurrency", "2"]

FROM base AS transform-worker
CMD ["flowforge", "worker", "transform", "--concurrency", "2"]

FROM base AS events-worker
CMD ["flowforge", "worker", "events", "--concurrency", "1"]

FROM base AS catalog-worker
CMD ["flowforge", "worker", "catalog", "--concurrency", "1"]

FROM base AS lineage-worker
CMD ["flowforge", "worker", "lineage", "--concurrency", "1"]

FROM base AS scheduler
CMD ["flowforge", "scheduler"]
