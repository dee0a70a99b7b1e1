"""The app of bench/sync_deps.py: the bare endpoint with two trivial dependencies.

BENCH_DEP_MODE=sync declares them `def` (as app/deps.py declares get_settings and get_engine),
anything else `async def`. FastAPI runs a `def` dependency in its threadpool.
"""

import json
import os
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

app = FastAPI()

if os.environ.get("BENCH_DEP_MODE") == "sync":

    def get_settings(request: Request) -> object:
        return request.app

    def get_engine(request: Request) -> object:
        return request.app

else:

    async def get_settings(request: Request) -> object:
        return request.app

    async def get_engine(request: Request) -> object:
        return request.app


@app.post("/webhooks/prestashop/{shop_id}", status_code=202)
async def receive(
    shop_id: str,
    request: Request,
    settings: Annotated[object, Depends(get_settings)],
    engine: Annotated[object, Depends(get_engine)],
) -> JSONResponse:
    event = json.loads(await request.body())
    return JSONResponse(
        {"status": "accepted", "event_id": event["data"]["history"]["id"]}, status_code=202
    )


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
