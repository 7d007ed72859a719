"""Operators' commands from ``/ws/operator``: presence, offers, wrap-up (which needs a work order or a reason),
notes and suggested answers played into the call's notes. Run under the hub's lock by :class:`OpsHub`."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from agent_console.models import User
from agent_console.ops import routing as r
from agent_console.ops.live import LiveCall
from agent_console.ops.outbox import WATCHERS, Outbox, dt
from agent_console.ops.protocol import NoteEvent, NoteOut

log = logging.getLogger(__name__)
NEEDS_ORDER = "请先提交工单，或选择无需工单的原因（骚扰电话、误拨、无声电话）"


class OperatorCommands:
    def __init__(self, router: r.Router, out: Outbox, calls: dict[str, LiveCall], clock: Callable[[], float],
                 order_check: Callable[[str], bool] | None = None) -> None:
        self.router, self.out, self.calls, self.clock = router, out, calls, clock
        #: whether a call filed or joined a work order (wrap-up cannot end without one, or a reason)
        self.order_check = order_check

    def run(self, user: User, cmd: Any) -> str | None:
        """Carry out an operator's command (the caller holds the hub's lock); an error message (Chinese) or None."""
        try:
            if cmd.type == "presence":
                op = self.router.operators.get(user.id)
                if op is not None and op.state == "wrap_up" and cmd.state == "ready":
                    return self._wrap_up_done(user, None)
                self.out.effects(self.router.set_presence(user.id, cmd.state))
            elif cmd.type == "accept":
                self.out.effects(self.router.accept(user.id, cmd.offer_id))
            elif cmd.type == "decline":
                self.out.effects(self.router.decline(user.id, cmd.offer_id))
            elif cmd.type == "wrap_up_done":
                return self._wrap_up_done(user, cmd.reason)
            elif cmd.type == "note":
                return self._note(user, cmd.call_id, cmd.text, "note", None)
            elif cmd.type == "play_suggestion":
                call = self.calls.get(cmd.call_id)
                found = [s for items in (call.suggestions.values() if call else []) for s in items
                         if s.faq_id == cmd.faq_id]
                if not found:
                    return "没有这条推荐答案"
                return self._note(user, cmd.call_id, found[-1].answer, "suggestion", cmd.faq_id)
            else:
                return "不支持的操作"
        except r.RoutingError as e:
            return str(e)
        return None

    def _wrap_up_done(self, user: User, reason: str | None) -> str | None:
        """End wrap-up: the call must have a work order, or the operator names why it needs none (kept on the
        call's record as a ``wrap_up_reason`` event)."""
        op = self.router.operators.get(user.id)
        call_id = op.call_id if op is not None and op.state == "wrap_up" else None
        if call_id is not None and reason is None and self.order_check is not None and not self._has_order(call_id):
            return NEEDS_ORDER
        self.out.effects(self.router.wrap_up_done(user.id))
        if call_id is not None and reason is not None:
            self.out.persist_event(call_id, "wrap_up_reason", {"reason": reason, "user_id": user.id,
                                                               "by": user.display_name or user.username})
        return None

    def _has_order(self, call_id: str) -> bool:
        assert self.order_check is not None
        try:
            return self.order_check(call_id)
        except Exception:  # noqa: BLE001 - a database that cannot answer must not hold an operator in wrap-up
            log.exception("ops: could not check the work order of call %s; wrap-up allowed", call_id)
            return True

    def _note(self, user: User, call_id: str, text: str, kind: str, faq_id: str | None) -> str | None:
        call = self.calls.get(call_id)
        if call is None:
            return "该通话已不在线"
        if user.role not in WATCHERS and user.id not in self.out.audience(call_id):
            return "只能为自己接听的来电添加备注"
        note = NoteOut(note_id=uuid.uuid4().hex[:12], call_id=call_id, kind=kind, text=text.strip(),  # type: ignore[arg-type]
                       by=user.display_name or user.username, at=dt(self.clock()), faq_id=faq_id)
        call.notes.append(note)
        self.out.emit_call(call, NoteEvent(note=note))
        self.out.persist_event(call_id, "operator_note", note.model_dump(mode="json") | {"user_id": user.id})
        return None

