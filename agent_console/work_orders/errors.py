"""422 answers in Simplified Chinese for the work-order API and the public intake: one sentence in ``detail``
(what the pages show) and every problem with its field in ``errors``.

Installed on the app for the paths of :data:`PATHS` only; other areas keep FastAPI's own answer.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from work_orders.settings import CATEGORIES, CATEGORY_NAMES

PATHS = ("/api/work_orders", "/api/intake", "/api/submit", "/api/departments", "/api/inbox")
FIELD_NAMES = {
    "category": "类别", "subcategory": "子类", "tags": "标签", "content": "诉求内容", "channel": "渠道",
    "citizen_name": "姓名", "citizen_phone": "联系电话", "citizen_id_number": "身份证号", "case_number": "案号",
    "call_id": "通话", "settled_at_once": "当场解答", "callback_due": "回电日期", "assignee": "承办部门",
    "reason": "原因", "workdays": "延期天数", "feedback": "办理结果", "rating": "满意度评价", "note": "说明",
    "external_id": "外部编号", "name": "名称", "kind": "类型", "active": "启用", "username": "用户名",
    "file": "附件", "status": "状态", "limit": "条数", "offset": "起始位置", "since": "开始日期", "until": "结束日期",
    "website": "网址",
}


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path") and not isinstance(p, int)]
    return parts[-1] if parts else ""


def _message(err: dict[str, Any]) -> str:
    t, ctx = err.get("type", ""), err.get("ctx") or {}
    field = _field(tuple(err.get("loc", ())))
    if field == "category" and t in ("literal_error", "enum"):
        return f"未知的工单类别：{err.get('input')}（可选：" + "、".join(
            f"{c} {CATEGORY_NAMES[c]}" for c in CATEGORIES) + "）"
    return {
        "missing": "必须填写",
        "extra_forbidden": "不支持的字段",
        "string_too_short": "不能为空" if ctx.get("min_length", 1) <= 1 else f"至少{ctx.get('min_length')}个字",
        "string_too_long": f"不能超过{ctx.get('max_length')}个字",
        "too_long": f"不能超过{ctx.get('max_length')}项",
        "string_type": "须为文本",
        "int_parsing": "须为整数", "int_type": "须为整数", "int_from_float": "须为整数",
        "bool_parsing": "须为是或否", "bool_type": "须为是或否",
        "greater_than_equal": f"不能小于{ctx.get('ge')}", "less_than_equal": f"不能大于{ctx.get('le')}",
        "greater_than": f"须大于{ctx.get('gt')}", "less_than": f"须小于{ctx.get('lt')}",
        "literal_error": f"取值无效（可选：{ctx.get('expected', '')}）",
        "date_from_datetime_parsing": "须为日期（YYYY-MM-DD）", "date_parsing": "须为日期（YYYY-MM-DD）",
        "date_type": "须为日期（YYYY-MM-DD）",
        "list_type": "须为列表", "dict_type": "须为对象", "model_type": "须为对象",
        "json_invalid": "请求内容不是有效的JSON",
        "value_error": str(ctx.get("error") or err.get("msg", "")).removeprefix("Value error, "),
    }.get(t, "格式不正确")


def field_errors(errors: list[dict[str, Any]]) -> list[dict[str, str]]:
    out = []
    for err in errors:
        field = _field(tuple(err.get("loc", ())))
        label = FIELD_NAMES.get(field, field)
        msg = _message(err)
        out.append({"field": field, "message": f"{label}：{msg}" if label and "工单类别" not in msg else msg})
    return out


def invalid(errors: list[dict[str, str]]) -> JSONResponse:
    return JSONResponse({"detail": "；".join(e["message"] for e in errors) or "请求格式不正确", "errors": errors},
                        status_code=422)


def install(app: FastAPI) -> None:
    async def handler(request: Request, exc: RequestValidationError) -> JSONResponse:
        if not request.url.path.startswith(PATHS):
            return await request_validation_exception_handler(request, exc)
        return invalid(field_errors(list(exc.errors())))

    app.add_exception_handler(RequestValidationError, handler)  # type: ignore[arg-type]
