"""Work orders (工单): the court's closed loop 接诉即办 → 当天转办 → 限期反馈 → 提醒督办 → 回访评价.

Pure domain rules — working-day calendar, deadlines, states and who may move an order between them —
with no database or web code, so the hub, the scheduler and the tests share one definition.
"""
