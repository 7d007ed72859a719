"""dashboard: daily summaries of work orders and calls kept by triggers, call_events (type, ts), work_orders
(rated_at) and a partial index of open orders (agent_console)

The supervisors' dashboard must answer in well under a second over a million orders; counting raw rows for a
year does not (see bench/dashboard.py). ``dashboard_order_days`` holds, per court day, category and department
(the order's assignee, '' = not dispatched), what the dashboard sums: orders received and settled at once (on
the day received), closed with their handling hours and a histogram of them (on the day closed), rated with
the sum of ratings and the 4–5 ratings (on the day rated). ``dashboard_call_days`` holds calls, consult calls
and calls answered by the knowledge base per day started. Database triggers keep both in step with every
insert, update and delete, whatever code writes (the work-order moves, the scheduler, bulk intake), in the same
transaction. The court's day: PostgreSQL converts with the zone in ``dashboard_meta``; SQLite adds its fixed
UTC offset (the dashboard counts raw rows where that offset does not hold). Existing rows are summed in once.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels = None
depends_on = None

TZ, OFFSET_MIN = "Asia/Shanghai", 480
#: upper edges (hours) of the handling-time histogram buckets h00..h23 (h23: 720 h and more)
EDGES = (0.25, 1, 2, 4, 8, 12, 16, 24, 32, 40, 48, 60, 72, 84, 96, 120, 144, 168, 216, 264, 336, 504, 720)
HCOLS = [f"h{i:02d}" for i in range(len(EDGES) + 1)]
SUMS = ["received", "settled_at_once", "closed", "handling_hours", "rated", "rating_sum", "satisfied", *HCOLS]
ORDER_COLS = ("created_at", "category", "assignee", "settled_at_once", "closed_at", "rating", "rated_at")
CALL_COLS = ("started_at", "menu_path", "end_cause")
CONSULT = '%"consult"%'


def _bucket(hours: str) -> str:
    whens = " ".join(f"WHEN {hours} < {e} THEN {i}" for i, e in enumerate(EDGES))
    return f"CASE {whens} ELSE {len(EDGES)} END"


def _upsert(table: str, key: str, cols: list[str]) -> str:
    sets = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in cols)
    return f"ON CONFLICT ({key}) DO UPDATE SET {sets}"


def _order_parts(dialect: str, r: str, s: str) -> list[str]:
    """INSERT statements adding ``s`` times row ``r``'s contributions (r = NEW/OLD on SQLite, a record on PG)."""
    if dialect == "sqlite":
        def day(col: str) -> str:
            return (f"date({r}.{col}, coalesce((SELECT printf('%+d minutes', offset_minutes) FROM dashboard_meta "
                    f"WHERE id = 1), '{OFFSET_MIN:+d} minutes'))")
        hours = f"((julianday({r}.closed_at) - julianday({r}.created_at)) * 24.0)"
    else:
        def day(col: str) -> str:
            return f"({r}.{col} AT TIME ZONE tz)::date"
        hours = f"(extract(epoch from {r}.closed_at - {r}.created_at) / 3600.0)"
    head = "INSERT INTO dashboard_order_days (day, category, department, " + ", ".join(SUMS) + ") "
    dep = f"coalesce({r}.assignee, '')"
    zeros = ["0"] * len(HCOLS)
    settled = f"CASE WHEN {r}.settled_at_once THEN {s} ELSE 0 END"
    received = [s, settled, "0", "0.0", "0", "0", "0", *zeros]
    hist = [f"CASE WHEN b = {i} THEN {s} ELSE 0 END" for i in range(len(HCOLS))]
    closed = ["0", "0", s, f"{s} * hrs", "0", "0", "0", *hist]
    rated = ["0", "0", "0", "0.0", s, f"{s} * {r}.rating", f"CASE WHEN {r}.rating >= 4 THEN {s} ELSE 0 END", *zeros]
    up = _upsert("dashboard_order_days", "day, category, department", SUMS)
    return [
        head + f"SELECT {day('created_at')}, {r}.category, {dep}, " + ", ".join(received)
        + f" WHERE {r}.created_at IS NOT NULL " + up,
        head + f"SELECT {day('closed_at')}, {r}.category, {dep}, " + ", ".join(closed)
        + f" FROM (SELECT hrs, {_bucket('hrs')} AS b FROM (SELECT {hours} AS hrs) AS h1) AS h2"
        + f" WHERE {r}.closed_at IS NOT NULL AND {r}.created_at IS NOT NULL " + up,
        head + f"SELECT {day('rated_at')}, {r}.category, {dep}, " + ", ".join(rated)
        + f" WHERE {r}.rated_at IS NOT NULL AND {r}.rating IS NOT NULL " + up,
    ]


def _call_part(dialect: str, r: str, s: str) -> str:
    if dialect == "sqlite":
        day = (f"date({r}.started_at, coalesce((SELECT printf('%+d minutes', offset_minutes) FROM dashboard_meta "
               f"WHERE id = 1), '{OFFSET_MIN:+d} minutes'))")
        path = f"CAST({r}.menu_path AS TEXT)"
    else:
        day = f"({r}.started_at AT TIME ZONE tz)::date"
        path = f"CAST({r}.menu_path AS TEXT)"
    kb = f"{r}.end_cause = 'answered_by_kb'"
    cols = ["calls", "consult", "answered_by_kb"]
    return (f"INSERT INTO dashboard_call_days (day, {', '.join(cols)}) SELECT {day}, {s}, "
            f"CASE WHEN {path} LIKE '{CONSULT}' OR {kb} THEN {s} ELSE 0 END, CASE WHEN {kb} THEN {s} ELSE 0 END"
            f" WHERE {r}.started_at IS NOT NULL " + _upsert("dashboard_call_days", "day", cols))


def _changed(dialect: str, cols: tuple[str, ...]) -> str:
    op_ = "IS NOT" if dialect == "sqlite" else "IS DISTINCT FROM"
    if dialect != "sqlite":
        return " OR ".join(f"OLD.{c}::text {op_} NEW.{c}::text" if c == "menu_path" else f"OLD.{c} {op_} NEW.{c}"
                           for c in cols)
    return " OR ".join(f"OLD.{c} {op_} NEW.{c}" for c in cols)


def _sqlite_triggers() -> list[str]:
    out = []
    for table, cols, parts in (("work_orders", ORDER_COLS, lambda r, s: _order_parts("sqlite", r, s)),
                               ("calls", CALL_COLS, lambda r, s: [_call_part("sqlite", r, s)])):
        name = f"dashboard_{table}"
        body = lambda stmts: "".join(x + ";\n" for x in stmts)  # noqa: E731
        out.append(f"CREATE TRIGGER {name}_ins AFTER INSERT ON {table} FOR EACH ROW BEGIN\n"
                   f"{body(parts('NEW', '1'))}END")
        out.append(f"CREATE TRIGGER {name}_del AFTER DELETE ON {table} FOR EACH ROW BEGIN\n"
                   f"{body(parts('OLD', '-1'))}END")
        out.append(f"CREATE TRIGGER {name}_upd AFTER UPDATE OF {', '.join(cols)} ON {table} FOR EACH ROW "
                   f"WHEN {_changed('sqlite', cols)} BEGIN\n{body(parts('OLD', '-1') + parts('NEW', '1'))}END")
    return out


def _pg_triggers() -> list[str]:
    out = []
    for table, cols, parts in (("work_orders", ORDER_COLS, lambda r, s: _order_parts("postgresql", r, s)),
                               ("calls", CALL_COLS, lambda r, s: [_call_part("postgresql", r, s)])):
        name = f"dashboard_{table}"
        out.append(
            f"CREATE FUNCTION {name}_add(r {table}, s integer) RETURNS void LANGUAGE plpgsql AS $$\n"
            f"DECLARE tz text;\nBEGIN\n"
            f"SELECT timezone INTO tz FROM dashboard_meta WHERE id = 1;\ntz := coalesce(tz, '{TZ}');\n"
            + "".join(x + ";\n" for x in parts("r", "s")) + "END $$")
        out.append(
            f"CREATE FUNCTION {name}_trg() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n"
            f"IF TG_OP IN ('UPDATE', 'DELETE') THEN PERFORM {name}_add(OLD, -1); END IF;\n"
            f"IF TG_OP IN ('UPDATE', 'INSERT') THEN PERFORM {name}_add(NEW, 1); END IF;\n"
            "RETURN NULL;\nEND $$")
        if table == "work_orders":  # bulk intake: one set-based sum per INSERT statement
            tz = "coalesce((SELECT timezone FROM dashboard_meta WHERE id = 1), '" + TZ + "')"
            out.append(f"CREATE FUNCTION {name}_ins() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n"
                       + _sums("postgresql", "new_rows", "", tz, upsert=True)[0] + ";\nRETURN NULL;\nEND $$")
            out.append(f"CREATE TRIGGER {name}_ins AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows "
                       f"FOR EACH STATEMENT EXECUTE FUNCTION {name}_ins()")
            out.append(f"CREATE TRIGGER {name}_insdel AFTER DELETE ON {table} FOR EACH ROW "
                       f"EXECUTE FUNCTION {name}_trg()")
        else:
            out.append(f"CREATE TRIGGER {name}_insdel AFTER INSERT OR DELETE ON {table} FOR EACH ROW "
                       f"EXECUTE FUNCTION {name}_trg()")
        out.append(f"CREATE TRIGGER {name}_upd AFTER UPDATE OF {', '.join(cols)} ON {table} FOR EACH ROW "
                   f"WHEN ({_changed('postgresql', cols)}) EXECUTE FUNCTION {name}_trg()")
    return out


def _sums(dialect: str, orders: str = "work_orders", calls: str = "calls", tz: str = f"'{TZ}'",
          upsert: bool = False) -> list[str]:
    """Set-based: the contributions of every row of ``orders`` and ``calls`` (tables or transition tables)."""
    if dialect == "sqlite":
        def day(col: str) -> str:
            return f"date({col}, '{OFFSET_MIN:+d} minutes')"
        hours = "((julianday(closed_at) - julianday(created_at)) * 24.0)"
    else:
        def day(col: str) -> str:
            return f"({col} AT TIME ZONE {tz})::date"
        hours = "(extract(epoch from closed_at - created_at) / 3600.0)"
    settled = "CASE WHEN settled_at_once THEN 1 ELSE 0 END"
    parts = " UNION ALL ".join([
        f"SELECT {day('created_at')} AS day, category, coalesce(assignee, '') AS department, 1 AS received, "
        f"{settled} AS settled, 0 AS closed, 0.0 AS hrs, 0 AS rated, 0 AS rating_sum, 0 AS satisfied, -1 AS b "
        f"FROM {orders} WHERE created_at IS NOT NULL",
        f"SELECT {day('closed_at')}, category, coalesce(assignee, ''), 0, 0, 1, {hours}, 0, 0, 0, "
        f"{_bucket(hours)} FROM {orders} WHERE closed_at IS NOT NULL AND created_at IS NOT NULL",
        f"SELECT {day('rated_at')}, category, coalesce(assignee, ''), 0, 0, 0, 0.0, 1, rating, "
        f"CASE WHEN rating >= 4 THEN 1 ELSE 0 END, -1 FROM {orders} "
        "WHERE rated_at IS NOT NULL AND rating IS NOT NULL",
    ])
    hist = ", ".join(f"sum(CASE WHEN b = {i} THEN 1 ELSE 0 END)" for i in range(len(HCOLS)))
    out = [f"INSERT INTO dashboard_order_days (day, category, department, {', '.join(SUMS)}) "
           f"SELECT day, category, department, sum(received), sum(settled), sum(closed), sum(hrs), sum(rated), "
           f"sum(rating_sum), sum(satisfied), {hist} FROM ({parts}) AS c GROUP BY day, category, department"
           + (" " + _upsert("dashboard_order_days", "day, category, department", SUMS) if upsert else "")]
    kb = "end_cause = 'answered_by_kb'"
    if calls:
        out.append(f"INSERT INTO dashboard_call_days (day, calls, consult, answered_by_kb) SELECT {day('started_at')}, "
                   f"count(*), sum(CASE WHEN CAST(menu_path AS TEXT) LIKE '{CONSULT}' OR {kb} THEN 1 ELSE 0 END), "
                   f"sum(CASE WHEN {kb} THEN 1 ELSE 0 END) FROM {calls} WHERE started_at IS NOT NULL "
                   f"GROUP BY {day('started_at')}"
                   + (" " + _upsert("dashboard_call_days", "day", ["calls", "consult", "answered_by_kb"])
                      if upsert else ""))
    return out


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_index("ix_call_events_type_ts", "call_events", ["type", "ts"], unique=False)
    op.create_index(op.f("ix_work_orders_rated_at"), "work_orders", ["rated_at"], unique=False)
    open_only = sa.text("status != 'closed'")
    op.create_index("ix_work_orders_open", "work_orders", ["assignee", "category", "status", "overdue", "feedback_due"],
                    unique=False, sqlite_where=open_only, postgresql_where=open_only)
    op.create_table(
        "dashboard_meta",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("offset_minutes", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dashboard_meta")),
    )
    op.create_table(
        "dashboard_order_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("department", sa.String(length=128), nullable=False),
        *[sa.Column(c, sa.Float() if c == "handling_hours" else sa.Integer(), nullable=False) for c in SUMS],
        sa.PrimaryKeyConstraint("day", "category", "department", name=op.f("pk_dashboard_order_days")),
        sqlite_with_rowid=False,  # rows in key order: a period is one sequential read (half the time)
    )
    op.create_table(
        "dashboard_call_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("consult", sa.Integer(), nullable=False),
        sa.Column("answered_by_kb", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_dashboard_call_days")),
        sqlite_with_rowid=False,
    )
    op.execute(sa.text(f"INSERT INTO dashboard_meta (id, timezone, offset_minutes) VALUES (1, '{TZ}', {OFFSET_MIN})"))
    for stmt in _sums(dialect):
        op.execute(sa.text(stmt))
    for stmt in _sqlite_triggers() if dialect == "sqlite" else _pg_triggers():
        op.execute(sa.text(stmt))


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in ("work_orders", "calls"):
        name = f"dashboard_{table}"
        if dialect == "sqlite":
            for suffix in ("ins", "del", "upd"):
                op.execute(sa.text(f"DROP TRIGGER IF EXISTS {name}_{suffix}"))
        else:
            op.execute(sa.text(f"DROP TRIGGER IF EXISTS {name}_insdel ON {table}"))
            op.execute(sa.text(f"DROP TRIGGER IF EXISTS {name}_ins ON {table}"))
            op.execute(sa.text(f"DROP FUNCTION IF EXISTS {name}_ins()"))
            op.execute(sa.text(f"DROP TRIGGER IF EXISTS {name}_upd ON {table}"))
            op.execute(sa.text(f"DROP FUNCTION IF EXISTS {name}_trg()"))
            op.execute(sa.text(f"DROP FUNCTION IF EXISTS {name}_add({table}, integer)"))
    op.drop_table("dashboard_call_days")
    op.drop_table("dashboard_order_days")
    op.drop_table("dashboard_meta")
    op.drop_index("ix_work_orders_open", table_name="work_orders")
    op.drop_index(op.f("ix_work_orders_rated_at"), table_name="work_orders")
    op.drop_index("ix_call_events_type_ts", table_name="call_events")
