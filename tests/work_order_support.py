"""Helpers for the work-order tests against a real hub process: a hub with a movable work-order clock (a file
the hub reads), logged-in API clients per user, departments with their handlers, and a look into the database."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hotline.db import make_engine, session_factory
from tests.browser import Hub
from tests.ops_support import TOKEN, add_users, login_cookie
from work_orders.models import WorkOrder, WorkOrderHistory, WorkOrderNotice

CN = ZoneInfo("Asia/Shanghai")
INTAKE_TOKEN = "intake-token-for-work-order-tests"


def at(y: int, mo: int, d: int, h: int = 10, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=CN)


def wo_hub(home: Path, now: datetime, **settings: str) -> Hub:
    """A hub whose work-order clock reads ``home/clock`` (see :func:`set_clock`)."""
    home.mkdir(parents=True, exist_ok=True)
    h = Hub(home)
    set_clock(h, now)
    h.env.update({"HOTLINE_HUB__WORKER_TOKEN": TOKEN, "HOTLINE_WORK_ORDERS__CLOCK_FILE": str(home / "clock"),
                  "HOTLINE_WORK_ORDERS__SCHEDULER_INTERVAL_S": "0.2",
                  "HOTLINE_WORK_ORDERS__INTAKE_TOKEN": INTAKE_TOKEN})
    h.env.update({f"HOTLINE_WORK_ORDERS__{k.upper()}": v for k, v in settings.items()})
    return h.start()


def set_clock(hub: Hub, now: datetime) -> None:
    (hub.home / "clock").write_text(now.isoformat())


def client(hub: Hub, user: str | None = None) -> httpx.Client:
    cookies = {"hotline_session": login_cookie(hub, user)} if user else {}
    return httpx.Client(base_url=hub.url, cookies=cookies, timeout=15)


def staff(hub: Hub, departments: dict[str, list[str]], **extra: str) -> dict[str, httpx.Client]:
    """Users op/sup/adm plus a handler per department member; departments created through the API."""
    names = [n for members in departments.values() for n in members]
    add_users(hub, ("op", "operator", None), ("sup", "supervisor", None), ("adm", "admin", None),
              *[(n, "handler", None) for n in names], *[(n, r, None) for n, r in extra.items()])
    clients = {n: client(hub, n) for n in ["op", "sup", "adm", *names, *extra]}
    for dept, members in departments.items():
        r = clients["sup"].post("/api/departments", json={"name": dept})
        assert r.status_code in (201, 409), r.text
        d = next(x for x in clients["sup"].get("/api/departments").json() if x["name"] == dept)
        r = clients["adm"].patch(f"/api/departments/{d['id']}", json={"members": members})
        assert r.status_code == 200, r.text
    return clients


@contextmanager
def database(hub: Hub) -> Iterator[Session]:
    engine = make_engine(f"sqlite:///{hub.home / 'hotline.db'}")
    try:
        with session_factory(engine)() as db:
            yield db
    finally:
        engine.dispose()


def snapshot(hub: Hub, order_id: int | None = None) -> dict[str, Any]:
    """What a refused or rejected request must leave unchanged: the row(s), history and notices."""
    with database(hub) as db:
        rows = db.scalars(select(WorkOrder).where(WorkOrder.id == order_id) if order_id else select(WorkOrder)).all()
        return {"orders": [{c.name: getattr(o, c.name) for c in WorkOrder.__table__.columns} for o in rows],
                "history": db.scalar(select(func.count(WorkOrderHistory.id))),
                "notices": db.scalar(select(func.count(WorkOrderNotice.id)))}


def notices(hub: Hub, order_id: int | None = None) -> list[WorkOrderNotice]:
    with database(hub) as db:
        q = select(WorkOrderNotice).order_by(WorkOrderNotice.id)
        if order_id is not None:
            q = q.where(WorkOrderNotice.order_id == order_id)
        return list(db.scalars(q))


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = predicate()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(0.1)
