// orchestrate dashboard: live updates (Server-Sent Events) and the mutating calls, in plain JS.
// The bearer token comes from ?token=... (as printed by `orchestrate serve`) or the sign-in
// dialog, and is kept in this browser's localStorage; it is sent only in the Authorization header.
"use strict";

const TOKEN_KEY = "orchestrate-token";
const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
const readOnly = document.body.dataset.readOnly === "true";

function takeTokenFromUrl() {
  const url = new URL(location.href);
  const token = url.searchParams.get("token");
  if (token) {
    localStorage.setItem(TOKEN_KEY, token);
    url.searchParams.delete("token");
    history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
}

function token() { return localStorage.getItem(TOKEN_KEY) || ""; }

async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  if (token()) headers["Authorization"] = "Bearer " + token();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = text; }
  if (res.status === 401) askToken();
  if (!res.ok) {
    const err = new Error((data && data.error) || res.statusText);
    err.status = res.status; err.data = data;
    throw err;
  }
  return data;
}

function askToken() {
  const dlg = $("#token-modal");
  if (!dlg || dlg.open) return;
  $("input[name=token]", dlg).value = token();
  dlg.showModal();
}

async function showWho() {
  const who = $("#whoami");
  if (!who || !token()) return;
  try { who.textContent = "signed in as " + (await api("GET", "/api/me")).user; }
  catch (e) { who.textContent = "token not accepted"; }
}

function setupToken() {
  const btn = $("#signin"), form = $("#token-form");
  if (btn) btn.addEventListener("click", askToken);
  if (form) form.addEventListener("submit", (ev) => {
    if (ev.submitter && ev.submitter.value === "save") {
      localStorage.setItem(TOKEN_KEY, $("input[name=token]", form).value.trim());
      showWho();
    }
  });
}

// -- live stream -------------------------------------------------------------------------------

function listen(query, onEvent) {
  const source = new EventSource("/api/events" + query);
  const kinds = ["run_started", "stage_started", "stage_finished", "stage_skipped", "stage_waiting",
                 "stage_rolled_back", "run_waiting", "run_finished"];
  kinds.forEach((k) => source.addEventListener(k, (ev) => onEvent(JSON.parse(ev.data))));
  return source;
}

function debounce(fn, ms) {
  let timer = null;
  return () => { clearTimeout(timer); timer = setTimeout(fn, ms); };
}

function fmtSeconds(v) {
  if (v === null || v === undefined) return "—";
  if (v < 60) return v.toFixed(1) + "s";
  if (v < 3600) return Math.floor(v / 60) + "m" + String(Math.floor(v % 60)).padStart(2, "0") + "s";
  return Math.floor(v / 3600) + "h" + String(Math.floor((v % 3600) / 60)).padStart(2, "0") + "m";
}

function setStatusClass(el, status) {
  el.classList.forEach((c) => { if (c.startsWith("st-")) el.classList.remove(c); });
  el.classList.add("st-" + status);
}

// -- run page: the DAG and the stage table follow the run without a reload ---------------------

const TERMINAL = ["succeeded", "failed", "cancelled"];

function renderRun(run) {
  const pill = $("#run-status");
  pill.textContent = run.status; setStatusClass(pill, run.status);
  document.body.dataset.runStatus = run.status;
  $("#run-reason").textContent = run.reason || "";
  $("#run-usage .tokens").textContent = run.usage.tokens.toLocaleString("en-US");
  $("#run-usage .cost").textContent = "$" + run.usage.cost_usd.toFixed(4);
  const stale = $("#run-stale");
  stale.hidden = !run.stale; stale.textContent = "stale: " + (run.stale_reason || "");
  const cancel = $("#cancel");
  if (cancel) cancel.hidden = TERMINAL.includes(run.status);
  for (const s of run.stages) {
    const node = $(`#dag .node[data-stage="${CSS.escape(s.name)}"]`);
    if (node) {
      setStatusClass(node, s.status);
      $("text.status", node).textContent = s.status;
      $("title", node).textContent = s.name + ": " + s.status;
    }
    const row = $(`#stages tr[data-stage="${CSS.escape(s.name)}"]`);
    if (row) {
      setStatusClass($(".dot", row), s.status);
      $(".status .text", row).textContent = s.status;
      $(".attempts", row).textContent = s.attempts.length;
      $(".duration", row).textContent = fmtSeconds(s.duration_seconds);
      $(".tokens", row).textContent = s.usage.tokens ? s.usage.tokens.toLocaleString("en-US") : "";
      $(".cost", row).textContent = s.usage.cost_usd ? "$" + s.usage.cost_usd.toFixed(4) : "";
      $(".outputs", row).textContent = Object.entries(s.outputs).map(([k, v]) => k + "=" + v).join(" ");
      $(".reason", row).textContent = s.reason || "";
    }
  }
  const box = $("#approvals-box");
  const pending = run.approvals.filter((a) => a.status === "pending");
  box.hidden = pending.length === 0;
  box.replaceChildren(...pending.map((a) => {
    const p = document.createElement("p");
    p.append(`Stage ${a.stage} waits for ${a.quorum} of ${a.approvers.join(", ") || "anyone"} `);
    if (!readOnly) {
      const b = document.createElement("button");
      b.type = "button"; b.textContent = "Decide…"; b.dataset.approval = a.id;
      b.addEventListener("click", () => openApproval(a.id));
      p.append(b);
    }
    return p;
  }));
}

function setupRun() {
  const runId = document.body.dataset.run;
  if (!runId) return;
  const refresh = async () => renderRun(await api("GET", "/api/pipeline-runs/" + runId));
  const soon = debounce(refresh, 100);
  listen("?run=" + encodeURIComponent(runId), soon);
  refresh();
  const cancel = $("#cancel");
  if (cancel) cancel.addEventListener("click", async () => {
    if (!confirm("Cancel this run?")) return;
    try { await api("POST", `/api/pipeline-runs/${runId}/cancel`); } catch (e) { alert(e.message); }
    refresh();
  });
  $$("button[data-log]").forEach((b) => b.addEventListener("click", async () => {
    const res = await fetch(`/api/pipeline-runs/${runId}/logs/${encodeURIComponent(b.dataset.log)}`);
    $("#log-title").hidden = false; $("#log-title").textContent = "Log of " + b.dataset.log;
    const pre = $("#log"); pre.hidden = false;
    pre.textContent = res.ok ? await res.text() : (await res.json()).error;
  }));
}

// -- approval modal --------------------------------------------------------------------------

async function openApproval(id) {
  const dlg = $("#approval-modal");
  const req = await api("GET", "/api/approvals/" + id);
  const field = (name) => $(`[data-field="${name}"]`, dlg);
  field("stage").textContent = req.stage;
  field("id").textContent = req.id;
  field("quorum").textContent = req.quorum;
  field("approvers").textContent = req.approvers.join(", ") || "anyone";
  const link = field("run-link"); link.textContent = req.run; link.href = "/runs/" + req.run;
  field("error").textContent = "";
  dlg.dataset.request = id;
  $("textarea[name=comment]", dlg).value = "";
  $("input[name=to]", dlg).value = "";
  dlg.showModal();
}

function setupApprovalModal() {
  const dlg = $("#approval-modal");
  if (!dlg) return;
  $$("button[data-action]", dlg).forEach((b) => b.addEventListener("click", async () => {
    const action = b.dataset.action;
    if (action === "close") { dlg.close(); return; }
    const comment = $("textarea[name=comment]", dlg).value.trim();
    const body = action === "approve" ? { comment: comment || null }
      : action === "reject" ? { reason: comment }
      : { to: $("input[name=to]", dlg).value.trim() };
    try {
      await api("POST", `/api/approvals/${dlg.dataset.request}/${action}`, body);
      dlg.close();
      if (!document.body.dataset.run) location.reload();
    } catch (e) {
      $('[data-field="error"]', dlg).textContent = e.message;
    }
  }));
  $$("button[data-approval]").forEach((b) => b.addEventListener("click", () => openApproval(b.dataset.approval)));
}

// -- pipeline page: trigger, YAML editor --------------------------------------------------------

async function startRun(name, variables) {
  const run = await api("POST", `/api/pipelines/${encodeURIComponent(name)}/run`, { variables });
  location.href = "/runs/" + run.id;
}

function setupTrigger() {
  const form = $("#trigger-form");
  if (form) form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const variables = {};
    $$("input", form).forEach((i) => { variables[i.name] = i.value; });
    try { await startRun(document.body.dataset.pipeline, variables); }
    catch (e) { $("#trigger-error").textContent = e.message; }
  });
  $$("button[data-run-pipeline]").forEach((b) => b.addEventListener("click", async () => {
    try { await startRun(b.dataset.runPipeline, {}); } catch (e) { alert(e.message); }
  }));
}

function setupEditor() {
  const area = $("#yaml"), gutter = $("#gutter");
  if (!area) return;
  let bad = new Map();
  const drawGutter = () => {
    const n = area.value.split("\n").length;
    gutter.replaceChildren(...Array.from({ length: n }, (_, i) => {
      const span = document.createElement("span");
      span.textContent = String(i + 1) + "\n";
      if (bad.has(i + 1)) { span.className = "bad"; span.title = bad.get(i + 1); }
      return span;
    }));
    gutter.scrollTop = area.scrollTop;
  };
  const show = (issues, okText) => {
    bad = new Map();
    const list = $("#issues");
    list.replaceChildren(...issues.map((i) => {
      if (i.line) bad.set(i.line, (bad.get(i.line) ? bad.get(i.line) + "\n" : "") + i.message);
      const li = document.createElement("li");
      li.textContent = `${i.file}:${i.line ?? "?"}:${i.column ?? "?"}: ${i.path ? i.path + ": " : ""}${i.message}` +
        (i.hint ? `  (hint: ${i.hint})` : "");
      li.dataset.line = i.line || "";
      li.addEventListener("click", () => goToLine(i.line));
      return li;
    }));
    $("#editor-status").textContent = issues.length ? `${issues.length} problem(s)` : okText;
    drawGutter();
  };
  const goToLine = (line) => {
    if (!line) return;
    const lines = area.value.split("\n");
    const start = lines.slice(0, line - 1).reduce((a, l) => a + l.length + 1, 0);
    area.focus(); area.setSelectionRange(start, start + (lines[line - 1] || "").length);
    area.scrollTop = (line - 3) * 18;
  };
  const failed = (e) => {
    if (e.data && e.data.issues) show(e.data.issues, "");
    else { show([], ""); $("#editor-status").textContent = e.message; }
  };
  const initial = $("#file-issues");
  const fileIssues = initial ? JSON.parse(initial.textContent) : [];
  if (fileIssues.length) show(fileIssues, "");  // the file as it is now: its errors at their lines
  area.addEventListener("input", drawGutter);
  area.addEventListener("scroll", () => { gutter.scrollTop = area.scrollTop; });
  $("#validate").addEventListener("click", async () => {
    try {
      const r = await api("POST", "/api/validate", { text: area.value, name: document.body.dataset.pipeline });
      show([], `valid: ${r.stages.length} stages`);
    } catch (e) { failed(e); }
  });
  const save = $("#save");
  if (save) save.addEventListener("click", async () => {
    try {
      // Validate first: nothing is written unless the whole definition is valid.
      await api("POST", "/api/validate", { text: area.value, name: document.body.dataset.pipeline });
      const r = await api("PUT", "/api/pipelines/" + encodeURIComponent(document.body.dataset.pipeline), { text: area.value });
      show([], r.changed ? `saved: version ${r.version}` : `unchanged (version ${r.version})`);
    } catch (e) { failed(e); }
  });
  drawGutter();
}

// -- pipeline list: status dots follow the runs --------------------------------------------------

function setupIndex() {
  const table = $("#pipelines");
  if (!table) return;
  const refresh = debounce(async () => {
    for (const p of await api("GET", "/api/pipelines")) {
      const row = $(`tr[data-pipeline="${CSS.escape(p.name)}"]`, table);
      if (!row || !p.last_run) continue;
      setStatusClass($(".dot", row), p.last_run.status);
      const cell = $(".last-status", row);
      const a = document.createElement("a");
      a.href = "/runs/" + p.last_run.id; a.textContent = p.last_run.status;
      cell.replaceChildren(a);
    }
  }, 200);
  listen("", refresh);
}

document.addEventListener("DOMContentLoaded", () => {
  takeTokenFromUrl();
  setupToken();
  showWho();
  setupApprovalModal();
  setupTrigger();
  setupEditor();
  setupRun();
  setupIndex();
});
