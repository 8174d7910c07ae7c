"""Imports run one way: interfaces -> core -> store / providers. Only the interfaces and the one
dispatch adapter import Celery, ``tasks`` or ``worker``; ``tasks`` never imports ``worker``
(the worker's wiring imports the task vocabulary, not the other way round)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The interfaces (and the adapter) that may reach Celery and the worker side.
INTERFACES = (
    "countermand/cli/",
    "countermand/api/",
    "countermand/demo.py",
    "countermand/dispatch.py",
    "countermand/workercmd.py",
)
CELERY_SIDE = ("celery", "kombu", "redbeat", "tasks", "worker", "schedules")
LOWER = ("countermand/store", "countermand/providers", "countermand/simulator")
CORE_NAMES = (
    "countermand.engine", "countermand.jobs", "countermand.cleanup", "countermand.verify",
    "countermand.runtime", "countermand.calls", "countermand.truth", "countermand.work",
    "countermand.watch", "countermand.recovery", "countermand.bridge", "countermand.cli",
    "countermand.demo", "countermand.dispatch", "countermand.api", "countermand.webhooks",
    "countermand.audit", "countermand.access",
)  # fmt: skip


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def modules(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def reaches(names: set[str], prefixes: tuple[str, ...]) -> set[str]:
    return {n for n in names if n.split(".")[0] in prefixes or n in prefixes}


@pytest.mark.parametrize("path", modules("countermand"), ids=rel)
def test_only_interfaces_reach_celery(path: Path) -> None:
    if rel(path).startswith(INTERFACES):
        return
    assert not reaches(imports(path), CELERY_SIDE), f"{rel(path)} imports the Celery side"


@pytest.mark.parametrize("path", modules("tasks"), ids=rel)
def test_tasks_never_import_worker(path: Path) -> None:
    assert not reaches(imports(path), ("worker",)), f"{rel(path)} imports worker"


@pytest.mark.parametrize("path", [p for folder in LOWER for p in modules(folder)], ids=rel)
def test_store_and_providers_do_not_import_the_core(path: Path) -> None:
    core = {n for n in imports(path) if n.startswith(CORE_NAMES)}
    assert not core, f"{rel(path)} imports the core: {sorted(core)}"


def test_the_adapter_sends_by_name() -> None:
    text = (ROOT / "countermand/dispatch.py").read_text()
    assert "send_task(" in text and "tasks.chunks" not in text
