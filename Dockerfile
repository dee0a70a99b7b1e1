# Relance: the same steps as `make run`, on a slim Python base, as a non-root user.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    RELANCE_DATABASE_URL=sqlite+aiosqlite:////data/relance.db \
    RELANCE_MAIL_URL=file:///data/outbox

WORKDIR /app
COPY pyproject.toml alembic.ini ./
COPY app ./app
COPY migrations ./migrations
COPY templates ./templates
RUN pip install --no-cache-dir -e . \
    && useradd --system --uid 10001 --home-dir /data relance \
    && mkdir -p /data && chown relance /data

USER relance
VOLUME ["/data"]
EXPOSE 8000
# Migrations are idempotent (Alembic upgrade head); run them, then serve.
CMD ["sh", "-c", "relance migrate && relance serve --host 0.0.0.0 --port 8000"]
