"""The supervisors' dashboard (issue 7): the court's figures of calls and work orders over a period, per category
and department — ``GET /api/dashboard``, ``/api/dashboard/export`` and the page ``/dashboard``."""
