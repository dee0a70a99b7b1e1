"""Baseline (a) of the ingest benchmark: a bare FastAPI endpoint on the same path.

It reads the body, parses the same JSON and answers 202 — no signature, no database. Served by
uvicorn exactly like `relance serve` (uvloop + httptools, one process):

    .venv/bin/python -m uvicorn bench.baseline_bare:app --port P --log-level warning
"""

import json

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

app = FastAPI()


@app.post("/webhooks/prestashop/{shop_id}", status_code=202)
async def receive(shop_id: str, request: Request) -> JSONResponse:
    event = json.loads(await request.body())
    return JSONResponse(
        {"status": "accepted", "event_id": event["data"]["history"]["id"]}, status_code=202
    )


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
