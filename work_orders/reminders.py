"""提醒督办: which reminders and escalations an order is due, as idempotent jobs.

A job's ``key`` names the order, the kind and the deadline it is about, so the scheduler can store
each key once (a unique column) in the same transaction that records the alert: a job is then sent
exactly once however often the scheduler runs, and a hub restarted after downtime sends what fell due
meanwhile on its first pass (jobs are "due at or before now", not "due in this minute"). An
extension moves the deadline, which makes new keys: the handler is reminded of the new deadline too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from work_orders.calendar import WorkCalendar
from work_orders.settings import WorkOrderSettings
from work_orders.working_time import add_office_minutes

Kind = Literal["dispatch_overdue", "sign_reminder", "sign_overdue", "feedback_reminder", "feedback_overdue",
               "callback_due"]
KIND_NAMES = {"dispatch_overdue": "超时未转办", "sign_reminder": "签收提醒", "sign_overdue": "超时未签收",
              "feedback_reminder": "即将到期提醒", "feedback_overdue": "逾期督办", "callback_due": "待回访"}


@dataclass(frozen=True)
class Timeline:
    """The dates of one order that reminders depend on."""

    order_id: int
    status: str
    received_at: datetime
    assignee: str | None = None
    feedback_due: datetime | None = None
    answered_at: datetime | None = None
    #: when dispatch is due, if the store keeps it (a returned or reopened order is due anew); else from
    #: ``received_at`` (当天转办)
    dispatch_due: datetime | None = None
    #: when it was dispatched: the 签收 deadline counts from here while it stays unsigned (status dispatched)
    dispatched_at: datetime | None = None

    def due_for_dispatch(self, calendar: WorkCalendar) -> datetime:
        return self.dispatch_due or calendar.same_day_due(self.received_at)


@dataclass(frozen=True)
class Job:
    key: str
    order_id: int
    kind: Kind
    at: datetime
    to: Literal["supervisor", "assignee", "callback"]


def jobs_for(t: Timeline, calendar: WorkCalendar, settings: WorkOrderSettings) -> list[Job]:
    """Every job this order has in its current state (due or not yet)."""
    out: list[Job] = []
    if t.status in ("received", "reopened"):
        due = t.due_for_dispatch(calendar)
        out.append(Job(f"{t.order_id}:dispatch_overdue:{due.isoformat()}", t.order_id, "dispatch_overdue", due,
                       "supervisor"))
    if t.status == "dispatched" and t.dispatched_at is not None and settings.sign_minutes > 0:
        # 签收: the assignee is reminded when the deadline passes, the supervisors told once more time passed
        since = t.dispatched_at.isoformat()
        out.append(Job(f"{t.order_id}:sign_reminder:{since}", t.order_id, "sign_reminder",
                       sign_due(t.dispatched_at, calendar, settings), "assignee"))
        out.append(Job(f"{t.order_id}:sign_overdue:{since}", t.order_id, "sign_overdue",
                       sign_due(t.dispatched_at, calendar, settings, escalate=True), "supervisor"))
    if t.status in ("dispatched", "in_progress") and t.feedback_due is not None:
        due = t.feedback_due
        remind = settings.remind_before_hours
        if remind > 0:
            out.append(Job(f"{t.order_id}:feedback_reminder:{due.isoformat()}", t.order_id, "feedback_reminder",
                           due - timedelta(hours=remind), "assignee"))
        out.append(Job(f"{t.order_id}:feedback_overdue:{due.isoformat()}", t.order_id, "feedback_overdue", due,
                       "supervisor"))
    if t.status == "answered" and t.answered_at is not None:
        out.append(Job(f"{t.order_id}:callback_due:{t.answered_at.isoformat()}", t.order_id, "callback_due",
                       t.answered_at, "callback"))
    return out


def sign_due(dispatched_at: datetime, calendar: WorkCalendar, settings: WorkOrderSettings, *,
             escalate: bool = False) -> datetime:
    """签收 due (or, with ``escalate``, the escalation due): office minutes after dispatch."""
    minutes = settings.sign_escalate_minutes if escalate else settings.sign_minutes
    return add_office_minutes(calendar, dispatched_at, minutes, settings.office_open)


def due_jobs(timelines: list[Timeline], now: datetime, calendar: WorkCalendar,
             settings: WorkOrderSettings) -> list[Job]:
    """Jobs due at or before ``now``, oldest first (the caller skips keys it already stored)."""
    jobs = [j for t in timelines for j in jobs_for(t, calendar, settings) if j.at <= now]
    return sorted(jobs, key=lambda j: (j.at, j.key))


def is_overdue(t: Timeline, now: datetime, calendar: WorkCalendar) -> bool:
    """On the 督办 list: dispatch or feedback later than its deadline."""
    if t.status in ("received", "reopened"):
        return now > t.due_for_dispatch(calendar)
    return t.status in ("dispatched", "in_progress") and t.feedback_due is not None and now > t.feedback_due
