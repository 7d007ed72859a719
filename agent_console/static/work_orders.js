// Shared by /orders and /inbox: API calls, the order detail with its history, action forms.
// Every text from the server goes through textContent, never innerHTML.
"use strict";

const WO = (() => {
  const $ = (id) => document.getElementById(id);

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function fmt(iso) {
    if (!iso) return "";
    return new Date(iso).toLocaleString("zh-CN", {timeZone: "Asia/Shanghai", hour12: false, year: "numeric",
                                                  month: "2-digit", day: "2-digit", hour: "2-digit",
                                                  minute: "2-digit"});
  }

  async function api(method, url, body) {
    const opts = {method, credentials: "same-origin", headers: {}};
    if (body instanceof FormData) opts.body = body;
    else if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const res = await fetch(url, opts);
    if (res.status === 401) { location.href = "/login"; throw new Error("请先登录"); }
    const data = await res.json().catch(() => ({}));
    if (!res.ok) {
      const d = data.detail;
      throw new Error(typeof d === "string" ? d : (d && d.message) || `操作失败（${res.status}）`);
    }
    return {data, res};
  }

  function row(cells, onClick) {
    const tr = document.createElement("tr");
    for (const c of cells) {
      const td = document.createElement("td");
      if (c instanceof Node) td.appendChild(c); else td.textContent = c === null || c === undefined ? "" : c;
      tr.appendChild(td);
    }
    if (onClick) { tr.classList.add("clickable"); tr.addEventListener("click", onClick); }
    return tr;
  }

  function badge(o) {
    const span = el("span", o.status_name, "status s-" + o.status);
    if (o.overdue) span.appendChild(el("span", "逾期", "flag"));
    return span;
  }

  function field(dl, label, value) {
    if (value === "" || value === null || value === undefined) return;
    dl.appendChild(el("dt", label));
    dl.appendChild(el("dd", value));
  }

  // the detail of one order; `actions` (a function) adds the buttons the page allows
  function renderDetail(box, o, actions) {
    box.replaceChildren();
    box.hidden = false;
    const h = el("h2");
    h.appendChild(el("span", o.number, "num"));
    h.appendChild(document.createTextNode(" "));
    h.appendChild(badge(o));
    box.appendChild(h);
    const dl = el("dl", undefined, "fields");
    field(dl, "类别", o.category_name + (o.subcategory ? " / " + o.subcategory : ""));
    field(dl, "渠道", o.channel_name);
    field(dl, "标签", (o.tags || []).join("、"));
    field(dl, "受理时间", fmt(o.created_at));
    field(dl, "来电人", o.citizen_name);
    field(dl, "联系电话", o.citizen_phone);
    field(dl, "回访号码", o.callback_number ? o.callback_number + "（自动回访将拨打此号码）"
      : (o.callback_refusal || ""));
    field(dl, "身份证号", o.citizen_id_number);
    field(dl, "案号", o.case_number);
    field(dl, "承办部门", o.assignee);
    field(dl, "转办期限", o.status === "received" || o.status === "reopened" ? fmt(o.dispatch_due) : "");
    field(dl, "反馈期限", fmt(o.feedback_due));
    field(dl, "待审批延期", o.extension_requested ? o.extension_requested + "个工作日" : "");
    field(dl, "反馈时间", fmt(o.answered_at));
    field(dl, "回访次数", o.callback_attempts || "");
    field(dl, "下次回访", o.status === "answered" || o.status === "callback" ? fmt(o.next_callback_at) : "");
    field(dl, "满意度", o.rating ? o.rating + "分" : "");
    if ((o.recordings || []).length) {  // served by any hub from the shared files directory
      dl.appendChild(el("dt", "录音"));
      const dd = el("dd");
      for (const name of o.recordings) {
        const a = el("a", name, "recording");
        a.href = "/api/work_orders/" + o.id + "/recordings/" + encodeURIComponent(name);
        a.target = "_blank";
        dd.appendChild(a);
        dd.appendChild(document.createTextNode(" "));
      }
      dl.appendChild(dd);
    }
    box.appendChild(dl);
    box.appendChild(el("h3", "通话摘要"));
    summaryForm(box, o);
    box.appendChild(el("h3", "诉求内容"));
    box.appendChild(el("p", o.content, "content"));
    if ((o.contacts || []).length) {
      box.appendChild(el("h3", `重复来电（${o.contacts.length}次）`));
      const ul = el("ul", undefined, "contacts");
      ul.id = "contacts";
      for (const c of o.contacts) ul.appendChild(el("li", `${fmt(c.at)} ${c.matched_by_name}`));
      box.appendChild(ul);
    }
    if (o.feedback) {
      box.appendChild(el("h3", "办理结果"));
      box.appendChild(el("p", o.feedback, "feedback"));
    }
    const act = el("div", undefined, "actions");
    act.id = "actions";
    box.appendChild(act);
    if (actions) actions(act, o);
    const err = el("div", "", "error");
    err.id = "detail-error";
    err.setAttribute("role", "alert");
    box.appendChild(err);
    if ((o.attachments || []).length) {
      box.appendChild(el("h3", "附件"));
      const ul = el("ul", undefined, "attachments");
      for (const a of o.attachments) {
        const li = el("li");
        const link = el("a", a.name);
        link.href = a.url;
        li.appendChild(link);
        li.appendChild(el("span", ` ${Math.ceil(a.size / 1024)} KB`, "muted"));
        ul.appendChild(li);
      }
      box.appendChild(ul);
    }
    box.appendChild(el("h3", "办理记录"));
    const ol = el("ol", undefined, "history");
    ol.id = "history";
    for (const x of o.history || []) {
      const li = el("li");
      li.appendChild(el("span", fmt(x.at), "at"));
      li.appendChild(el("b", x.action_name));
      li.appendChild(el("span", x.actor, "who"));
      if (x.note) li.appendChild(el("span", x.note, "note"));
      ol.appendChild(li);
    }
    box.appendChild(ol);
  }

  // the call summary (诉求, key facts, what the IVR answered): shown to whoever handles the order, editable
  function summaryForm(box, o) {
    const ta = el("textarea", undefined, "summary");
    ta.id = "summary";
    ta.rows = 4;
    ta.maxLength = 4000;
    ta.value = o.summary || "";
    const save = el("button", "保存摘要");
    save.type = "button";
    save.id = "summary-save";
    const msg = el("span", "", "muted");
    msg.id = "summary-result";
    save.addEventListener("click", async () => {
      msg.textContent = "";
      try {
        const {data} = await api("PUT", `/api/work_orders/${o.id}/summary`, {summary: ta.value});
        ta.value = data.summary;
        msg.textContent = "摘要已保存";
      } catch (e) { msg.textContent = e.message; }
    });
    box.append(ta, save, msg);
  }

  // a small form: fields [{name, label, type, options}], then a submit button posting to the move's endpoint
  function moveForm(parent, o, action, label, fields, done) {
    const form = el("form", undefined, "move");
    form.dataset.action = action;
    for (const f of fields || []) {
      const lab = el("label", f.label);
      let input;
      if (f.type === "textarea") input = el("textarea");
      else if (f.type === "select") {
        input = el("select");
        for (const [v, t] of f.options) { const opt = el("option", t); opt.value = v; input.appendChild(opt); }
      } else {
        input = el("input");
        input.type = f.type || "text";
        if (f.min !== undefined) input.min = f.min;
        if (f.max !== undefined) input.max = f.max;
      }
      input.name = f.name;
      lab.appendChild(input);
      form.appendChild(lab);
    }
    const b = el("button", label);
    b.type = "submit";
    form.appendChild(b);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const body = {};
      for (const f of fields || []) {
        const v = form.elements[f.name].value.trim();
        body[f.name] = f.type === "number" ? Number(v) : v;
      }
      b.disabled = true;
      $("detail-error").textContent = "";
      try {
        const {data} = await api("POST", `/api/work_orders/${o.id}/${action}`, body);
        done(data);
      } catch (e) {
        $("detail-error").textContent = e.message;
      } finally {
        b.disabled = false;
      }
    });
    parent.appendChild(form);
    return form;
  }

  function ratingForm(parent, o, done) {
    return moveForm(parent, o, "rate", "提交评价", [
      {name: "rating", label: "满意度（1–5分，2分及以下将重新办理）", type: "select",
       options: [["5", "5分 非常满意"], ["4", "4分 满意"], ["3", "3分 基本满意"], ["2", "2分 不满意"],
                 ["1", "1分 非常不满意"]]},
      {name: "note", label: "回访记录", type: "textarea"}], done);
  }

  function attachForm(parent, o, done) {
    const form = el("form", undefined, "move attach");
    const input = el("input");
    input.type = "file";
    input.name = "file";
    form.appendChild(input);
    const b = el("button", "添加附件");
    b.type = "submit";
    form.appendChild(b);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      if (!input.files.length) return;
      const fd = new FormData();
      fd.append("file", input.files[0]);
      $("detail-error").textContent = "";
      try {
        await api("POST", `/api/work_orders/${o.id}/attachments`, fd);
        done();
      } catch (e) {
        $("detail-error").textContent = e.message;
      }
    });
    parent.appendChild(form);
  }

  function notices(ul, items, open) {
    ul.replaceChildren();
    if (!items.length) { ul.appendChild(el("li", "暂无提醒", "muted")); return; }
    for (const n of items) {
      const li = el("li", undefined, "notice k-" + n.kind);
      li.appendChild(el("span", fmt(n.created_at), "at"));
      li.appendChild(el("b", n.kind_name));
      li.appendChild(el("span", n.number, "num"));
      li.appendChild(el("span", n.message, "msg"));
      const view = el("button", "查看");
      view.type = "button";
      view.addEventListener("click", () => open(n.order_id));
      const read = el("button", "已读");
      read.type = "button";
      read.addEventListener("click", async () => {
        await api("POST", `/api/work_orders/notices/${n.id}/read`).catch(() => {});
        li.remove();
      });
      li.appendChild(view);
      li.appendChild(read);
      ul.appendChild(li);
    }
  }

  async function logout() {
    await fetch("/api/auth/logout", {method: "POST", credentials: "same-origin"}).catch(() => {});
    location.href = "/login";
  }

  return {$, el, fmt, api, row, badge, renderDetail, moveForm, ratingForm, attachForm, notices, logout};
})();
