"""提醒督办: in the hub, every ``scheduler_interval_s`` the open orders' due jobs (``work_orders.reminders``) are
stored as notices, each with its history line (and the overdue flag for escalations) in one transaction.

The notice's key is unique, so a job is stored once however many passes or hubs see it; jobs are "due at or
before now", so a hub that was down catches up on its first pass. Nothing is kept in memory between passes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from work_orders import store as orders
from work_orders.models import WorkOrder, WorkOrderNotice
from work_orders.reminders import Job, Timeline, due_jobs
from work_orders.store import SYSTEM, Conflict, WorkOrderContext, job_message, notice

log = logging.getLogger(__name__)
_CHUNK = 500


def _timelines(db: Session, ctx: WorkOrderContext) -> list[Timeline]:
    now = ctx.now()
    soon = now + timedelta(hours=ctx.settings.remind_before_hours)
    # 签收 is due no earlier than sign_minutes of wall time after dispatch (office minutes are never fewer)
    unsigned_since = now - timedelta(minutes=ctx.settings.sign_minutes or 10 ** 6)
    s = WorkOrder.status
    rows = db.execute(select(WorkOrder.id, s, WorkOrder.created_at, WorkOrder.assignee, WorkOrder.feedback_due,
                             WorkOrder.answered_at, WorkOrder.dispatch_due, WorkOrder.dispatched_at).where(or_(
        and_(s.in_(("received", "reopened")), or_(WorkOrder.dispatch_due <= now, WorkOrder.dispatch_due.is_(None))),
        and_(s.in_(("dispatched", "in_progress")), WorkOrder.feedback_due <= soon),
        and_(s == "dispatched", WorkOrder.dispatched_at <= unsigned_since),
        s == "answered"))).all()
    return [Timeline(r.id, r.status, r.created_at, r.assignee, r.feedback_due, r.answered_at, r.dispatch_due,
                     r.dispatched_at) for r in rows]


def pending_jobs(db: Session, ctx: WorkOrderContext) -> list[tuple[Job, Timeline]]:
    """Jobs due now whose keys are not stored yet."""
    timelines = {t.order_id: t for t in _timelines(db, ctx)}
    jobs = due_jobs(list(timelines.values()), ctx.now(), ctx.calendar, ctx.settings)
    stored: set[str] = set()
    keys = [j.key for j in jobs]
    for i in range(0, len(keys), _CHUNK):
        stored |= set(db.scalars(select(WorkOrderNotice.key).where(WorkOrderNotice.key.in_(keys[i:i + _CHUNK]))))
    return [(j, timelines[j.order_id]) for j in jobs if j.key not in stored]


def run_once(sessions: Callable[[], Session], ctx: WorkOrderContext) -> list[str]:
    """One pass; returns the keys stored now."""
    with sessions() as db:
        pending = pending_jobs(db, ctx)
    done = []
    for job, t in pending:
        with sessions() as db:
            order = db.get(WorkOrder, job.order_id)
            if order is None or order.status != t.status:
                continue  # moved meanwhile: the next pass sees its new jobs
            now = ctx.now()
            message = job_message(order, job.kind, job.at, ctx.calendar)
            fields = {"overdue": True} if job.kind.endswith("_overdue") else {}
            try:
                orders.record(db, order, actor=SYSTEM, action=job.kind, at=now, fields=fields, note=message,
                              notices=[notice(order, key=job.key, kind=job.kind, audience=job.to, due_at=job.at,
                                              message=message, at=now)])
                db.commit()
            except (IntegrityError, Conflict):  # another pass or hub stored it, or the order just changed
                db.rollback()
                continue
        done.append(job.key)
        log.info("work orders: %s for order %s", job.kind, job.order_id)
    return done


async def run_forever(sessions: Callable[[], Session], ctx: WorkOrderContext) -> None:
    """A pass every ``scheduler_interval_s``, each in a worker thread (the hub runs this as a task of its loop and
    cancels it when it stops)."""
    while True:
        try:
            await asyncio.to_thread(run_once, sessions, ctx)
        except Exception:  # noqa: BLE001 - a failed pass is retried on the next
            log.exception("work orders: scheduler pass failed")
        await asyncio.sleep(ctx.settings.scheduler_interval_s)
