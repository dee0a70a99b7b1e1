"""Evidence: CPU cost of one statement through SQLAlchemy's async Core vs raw asyncpg.

    .venv/bin/python -m bench.execute_cost [--n 2000]

Inserts `--n` single rows on one connection, once through `AsyncConnection.execute` with a
statement built once (as the hot path does) and once through an asyncpg prepared statement,
in a scratch table of a scratch database, and prints CPU and wall time per statement.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

import asyncpg
from sqlalchemy import Column, Integer, MetaData, Table, insert
from sqlalchemy.ext.asyncio import create_async_engine

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


async def main(n: int) -> None:
    name = f"bench_exec_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = ADMIN.rsplit("/", 1)[0] + f"/{name}"
    engine = create_async_engine(dsn.replace("postgresql://", "postgresql+asyncpg://"))
    try:
        metadata = MetaData()
        table = Table("t", metadata, Column("id", Integer, primary_key=True), Column("x", Integer))
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        stmt = insert(table)
        async with engine.connect() as conn:
            await conn.execute(stmt, {"x": 0})
            cpu, wall = time.process_time(), time.perf_counter()
            for i in range(n):
                await conn.execute(stmt, {"x": i})
            sa = (time.process_time() - cpu, time.perf_counter() - wall)
            await conn.commit()
        raw = await asyncpg.connect(dsn)
        prepared = await raw.prepare("INSERT INTO t (x) VALUES ($1)")
        cpu, wall = time.process_time(), time.perf_counter()
        for i in range(n):
            await prepared.fetch(i)
        direct = (time.process_time() - cpu, time.perf_counter() - wall)
        await raw.close()
        for label, (c, w) in (("SQLAlchemy async Core", sa), ("raw asyncpg", direct)):
            print(
                f"{label:<22} {1e6 * c / n:6.0f} µs CPU  {1e6 * w / n:6.0f} µs wall per statement"
            )
    finally:
        await engine.dispose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    asyncio.run(main(parser.parse_args().n))
