"""An input file sent as a request body: spooled as it arrives (in memory up to 1 MiB, then a
temporary file), refused past ``API_MAX_UPLOAD_BYTES`` (413), then read by the same reader as the
CLI's files (``countermand.inputs``) in a thread, so the event loop keeps serving."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Iterator
from itertools import islice
from typing import IO

from fastapi import Request

from countermand.api.problems import ApiProblem
from countermand.inputs import InputRow, read_rows
from countermand.providers import ProviderSpec

CSV, NDJSON = "text/csv", "application/x-ndjson"
IN_MEMORY = 1024 * 1024
ROWS_PER_HOP = 2000


async def spool(request: Request, limit: int) -> IO[bytes]:
    declared = request.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiProblem(413, f"the input is {declared} bytes, over the {limit}-byte limit")
    body = tempfile.SpooledTemporaryFile(max_size=IN_MEMORY)  # noqa: SIM115 - returned open
    size = 0
    async for part in request.stream():
        size += len(part)
        if size > limit:
            body.close()
            raise ApiProblem(413, f"the input is over the {limit}-byte limit")
        body.write(part)
    body.seek(0)
    return body


def input_name(content_type: str) -> str:
    """The name the input is known by in messages (its kind follows the content type)."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == CSV:
        return "upload.csv"
    if kind == NDJSON:
        return "upload.jsonl"
    raise ApiProblem(415, f"send the input as {CSV} or {NDJSON}, not {kind or 'nothing'}")


async def rows_of(body: IO[bytes], name: str, spec: ProviderSpec) -> AsyncIterator[InputRow]:
    """The rows, read ``ROWS_PER_HOP`` at a time in a thread; reading errors (``InputError``)
    surface here, as from the CLI."""
    warnings: list[str] = []
    rows: Iterator[InputRow] = await asyncio.to_thread(read_rows, name, body, spec, warnings.append)
    while batch := await asyncio.to_thread(lambda: list(islice(rows, ROWS_PER_HOP))):
        for row in batch:
            yield row
