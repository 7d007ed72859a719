"""``/api/work_orders``: file, list, read (with history), one endpoint per move of ``work_orders.rules``,
attachments, notices, the 督办 list, the four lists (报告单, 督办单, 核查单, 回访单) and their exports, 类案;
``/api/inbox`` for handlers; ``/api/departments``;
``/api/calls/{call_id}/work_order_draft`` for operators at wrap-up — one router, made of one module per area.

Refused moves answer 409 with the reason in Chinese and change nothing; malformed bodies 422 with Chinese field
errors (``agent_console.work_orders.errors``). What leaves for a browser is masked for roles that must not see
personal data; what is stored is not: a masked phone number or case number sent back from a draft is replaced by
the call's own.
"""

from __future__ import annotations

from fastapi import APIRouter

from agent_console.work_orders import (
    api_clusters,
    api_departments,
    api_lists,
    api_order,
    api_orders,
    api_supervision,
)

router = APIRouter()
# the fixed paths (/api/work_orders/taxonomy, /supervision, /notices, /lists) before /api/work_orders/{work_order_id}
for part in (api_orders, api_supervision, api_lists, api_clusters, api_order, api_departments):
    router.include_router(part.router)
