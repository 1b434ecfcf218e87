"""A FastAPI service that hands image resizing to corral workers, with one `AsyncClient`.

Run it from the repository root, each in a terminal of its own:

    corral run configs/single.yaml                  # a coordinator on tcp://127.0.0.1:5555
    python -m examples.fastapi_service worker       # a worker that runs `resize` (below)
    uvicorn examples.fastapi_service:app --port 8000

then:

    curl -X POST localhost:8000/resize -H 'content-type: application/json' \\
         -d '{"path": "photos/cat.png", "width": 128}'               # 202 {"job_id": "..."}
    curl localhost:8000/jobs/JOB_ID                                  # its state and result
    curl -X POST 'localhost:8000/resize/wait?timeout=5' -H 'content-type: application/json' \\
         -d '{"path": "photos/cat.png", "width": 64}'                # 200 with the result,
                                                                     # or 504 after 5 s

`CORRAL_CONNECT` names the coordinator (several, comma-separated, for coordinators sharing a
database); the default is tcp://127.0.0.1:5555. The one client is opened in the app's lifespan
and closed at shutdown; every request coroutine shares it (one socket, however many requests
wait at once). Run one uvicorn worker process per client: an AsyncClient belongs to one event
loop.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from nodes import AsyncClient, WorkerNode
from nodes.async_client import AsyncJobHandle
from nodes.client import Job, JobFailed
from transport.errors import ConnectionLost, UnknownJob

DEFAULT_COORDINATOR = "tcp://127.0.0.1:5555"
WAIT_DEFAULT_S = 10.0
WAIT_LIMIT_S = 60.0  # longer waits belong to a poll of GET /jobs/{id}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def coordinator_addresses() -> list[str]:
    """From CORRAL_CONNECT (read when the app starts, not at import), else the default."""
    named = os.environ.get("CORRAL_CONNECT", DEFAULT_COORDINATOR)
    return [address.strip() for address in named.split(",") if address.strip()]


# -- the job ------------------------------------------------------------------------------------


def resize(path: str, width: int) -> dict[str, Any]:
    """The worker's side. It stands in for real image work (Pillow's `Image.thumbnail`, say):
    it checks the name and says where the thumbnail would go."""
    if not path.lower().endswith(IMAGE_SUFFIXES):
        raise ValueError(f"not an image: {path}")
    stem, _, suffix = path.rpartition(".")
    return {"source": path, "width": width, "thumbnail": f"{stem}-{width}w.{suffix}"}


# -- the HTTP side ------------------------------------------------------------------------------


class ResizeRequest(BaseModel):
    path: str = Field(min_length=1)
    width: int = Field(gt=0, le=10_000)


def corral(request: Request) -> AsyncClient:
    """The app's one client (opened by `lifespan`)."""
    return request.app.state.corral


Corral = Annotated[AsyncClient, Depends(corral)]
router = APIRouter()


async def enqueue_resize(client: AsyncClient, body: ResizeRequest) -> AsyncJobHandle:
    # Resizing is deterministic: a file that fails once fails again, so one attempt.
    return await client.enqueue("resize", [body.path, body.width], max_attempts=1)


def job_view(job: Job) -> dict[str, Any]:
    return {
        "job_id": job.id,
        "state": job.state,
        "attempt": job.attempt,
        "result": job.result,
        "errors": job.errors,
    }


@router.post("/resize", status_code=202)
async def submit(body: ResizeRequest, client: Corral) -> dict[str, str]:
    """Enqueue a resize; answer at once with the job id."""
    return {"job_id": await enqueue_resize(client, body)}


@router.get("/jobs/{job_id}")
async def job_state(job_id: str, client: Corral) -> dict[str, Any]:
    """The job's state, and its result once completed (404 for an unknown id)."""
    try:
        return job_view(await client.get(job_id))
    except UnknownJob:
        raise HTTPException(404, f"no job {job_id}") from None


@router.post("/resize/wait")
async def submit_and_wait(
    body: ResizeRequest,
    client: Corral,
    timeout: Annotated[float, Query(gt=0, le=WAIT_LIMIT_S)] = WAIT_DEFAULT_S,
) -> dict[str, Any]:
    """Enqueue a resize and answer with its result: 504 (with the job id, to poll later) when
    it has not ended within `timeout` seconds, 502 when it failed."""
    handle = await enqueue_resize(client, body)
    try:
        result = await handle.result(timeout)
    except TimeoutError:
        detail = {"message": f"not done within {timeout} s", "job_id": handle.id}
        raise HTTPException(504, detail) from None
    except JobFailed as failed:
        raise HTTPException(502, job_view(failed.job)) from None
    return {"job_id": handle.id, "result": result}


async def coordinator_unreachable(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": f"coordinator unreachable: {exc}"}, status_code=503)


def create_app(connect: str | Sequence[str] | None = None) -> FastAPI:
    """The app, talking to `connect` (default: CORRAL_CONNECT, else tcp://127.0.0.1:5555)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncClient(connect or coordinator_addresses()) as client:
            app.state.corral = client
            yield

    app = FastAPI(title="resize service", lifespan=lifespan)
    app.include_router(router)
    app.add_exception_handler(ConnectionLost, coordinator_unreachable)
    return app


app = create_app()


def run_worker() -> None:
    """`python -m examples.fastapi_service worker`: run `resize` jobs until Ctrl-C."""
    worker = WorkerNode(connect=coordinator_addresses(), concurrency=4)
    worker.handler("resize")(resize)
    worker.start()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        worker.stop()


if __name__ == "__main__":
    if sys.argv[1:] != ["worker"]:
        sys.exit("usage: python -m examples.fastapi_service worker  (serve with uvicorn)")
    run_worker()
