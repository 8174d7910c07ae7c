"""Operator commands: ``api`` (the HTTP API and dashboard), ``keys`` (API keys), ``audit``."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer
from rich.console import Console

from countermand import access, audit
from countermand.access import Role
from countermand.cli.common import ME, app, err, fail, print_json, run_store
from countermand.credentials import NO_VENDOR, usable_vendors
from countermand.settings import get_settings
from countermand.store import Store

keys_app = typer.Typer(help="API keys of the HTTP API and the dashboard.")
app.add_typer(keys_app, name="keys")


def require_a_vendor() -> None:
    """A worker or an API that can reach no vendor says what is missing, and stops."""
    settings = get_settings()
    try:
        usable = usable_vendors(settings)
    except Exception as exc:  # an unreadable credentials file says so itself
        raise fail(str(exc)) from exc
    if not usable:
        raise fail(NO_VENDOR)


@app.command()
def api(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json, /docs) and the dashboard (/)."""
    import uvicorn

    from countermand.api import create_app
    from countermand.logs import configure

    require_a_vendor()
    configure(get_settings().log_format)
    uvicorn.run(create_app(), host=host, port=port, log_config=None, access_log=False)


@keys_app.command("add")
def keys_add(
    name: Annotated[str, typer.Argument(help="a name for the key (1-64 of [A-Za-z0-9_.-])")],
    role: Annotated[Role, typer.Option(help="viewer reads; operator also acts")],
    orgs: Annotated[
        str | None, typer.Option(help="comma-separated orgs the key is limited to")
    ] = None,
) -> None:
    """Make a key: printed once, alone on the last line of stdout (only its digest is kept)."""
    limited = [o.strip() for o in orgs.split(",") if o.strip()] if orgs else None

    async def body(store: Store) -> str:
        key = await access.add_key(store, name, role, limited)
        await audit.record(store, ME, "key_add", None, key=name, role=role.value, orgs=limited)
        return key

    key = run_store(body)
    err.print(f"key {name!r} ({role.value}) made; it is shown once:")
    print(key)


@keys_app.command("list")
def keys_list(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Names, roles and orgs of the keys (never the keys)."""
    found = run_store(access.list_keys)
    if as_json:
        print_json([{**asdict(k), "role": k.role.value} for k in found])
        return
    out = Console()
    for key in found:
        out.print(f"{key.name}  {key.role.value}  {','.join(key.orgs or ['all orgs'])}")


@keys_app.command("revoke")
def keys_revoke(name: str) -> None:
    """Delete a key: it stops working at once, with its dashboard sessions."""

    async def body(store: Store) -> None:
        await access.revoke_key(store, name)
        await audit.record(store, ME, "key_revoke", None, key=name)

    run_store(body)
    err.print(f"key {name!r} revoked")


@app.command("audit")
def audit_log(
    job: Annotated[str | None, typer.Option(help="only this job's entries")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON array")] = False,
) -> None:
    """Who did what, newest first."""
    found = run_store(lambda store: audit.entries(store, job_id=job, limit=limit))
    if as_json:
        print_json([e.model_dump(mode="json") for e in found])
        return
    out = Console()
    for e in found:
        when = audit.iso_time(e.at)
        out.print(f"{when}  {e.actor}  {e.action}  {e.job_id or '-'}  {e.params or ''}")
