"""Work orders (工单): the court's closed loop 接诉即办 → 当天转办 → 限期反馈 → 提醒督办 → 回访评价, in one home.

The rules are pure (``calendar``: working days and hours; ``rules``: states and who may move an order;
``reminders``, ``filing``: which call events file an order, ``callbacks``, ``taxonomy``, ``numbering``); the
tables (``models``), the store (``store``: every change with its history line) and the reminder ``scheduler``
use SQLAlchemy but no web code, so the hub, the CLI and the tests share one definition. The hub's web face is
``agent_console.work_orders``.
"""
