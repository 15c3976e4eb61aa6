// The live warnings page: rows (of every kind of warning), acknowledgements, region tiles and
// the processor's status arrive as server-sent events. Every time shown is formatted by the server, so a row added
// live reads exactly like one rendered with the page.
const body = document.getElementById("warnings-body");
const rowId = (warningId) => "w-" + warningId.replace(/[^A-Za-z0-9_-]/g, "_");

function sortsBefore(a, b) {  // most severe, then raised longest ago, then area: as the server orders them
  if (a.dataset.rank !== b.dataset.rank) return Number(a.dataset.rank) < Number(b.dataset.rank);
  if (a.dataset.since !== b.dataset.since) return a.dataset.since < b.dataset.since;
  return a.dataset.area < b.dataset.area;
}

function place(row) {
  row.remove();
  for (const other of body.children) {
    if (sortsBefore(row, other)) { body.insertBefore(row, other); return; }
  }
  body.appendChild(row);
}

function renderAck(cell, warningId, a) {
  cell.replaceChildren();
  if (!a) {
    const link = document.createElement("a");
    link.className = "govuk-link"; link.href = "/warnings/" + encodeURIComponent(warningId) + "#acknowledge";
    link.textContent = "Acknowledge"; cell.appendChild(link); return;
  }
  const who = document.createElement("strong"); who.textContent = a.by; cell.appendChild(who);
  cell.append(", " + a.at_display + (a.earlier ? " (at " + a.severity + ")" : ""));
  if (a.note) {
    const note = document.createElement("span"); note.className = "govuk-body-s"; note.textContent = a.note;
    cell.append(document.createElement("br"), note);
  }
}

let tilesPending = false;
function refreshTiles() {
  if (tilesPending) return;
  tilesPending = true;
  setTimeout(() => fetch("/warnings/tiles.svg").then((r) => r.text()).then((svg) => {
    document.getElementById("tiles").innerHTML = svg; tilesPending = false;
  }, () => { tilesPending = false; }), 300);
}

function render(w) {
  let row = document.getElementById(rowId(w.warning_id));
  if (w.severity === "NONE") { if (row) row.remove(); }
  else {
    if (!row) { row = document.getElementById("row-template").content.firstElementChild.cloneNode(true); row.id = rowId(w.warning_id); }
    Object.assign(row.dataset, { warningId: w.warning_id, rank: String(w.rank), since: w.since, area: w.group_name,
                                 product: w.product });
    const area = row.querySelector(".area");
    area.textContent = w.group_name + w.level_note;
    area.href = "/warnings/" + encodeURIComponent(w.warning_id);
    row.querySelector(".msg").textContent = w.detail;
    const sev = row.querySelector(".sev"); sev.textContent = w.severity; sev.className = "sev app-sev app-sev--" + w.severity;
    const need = row.querySelector(".demand"), have = row.querySelector(".supply");  // whatever the rule needs and has
    need.textContent = w.need; need.dataset.unit = w.need_unit;
    have.textContent = w.have; have.dataset.unit = w.have_unit;
    const spark = row.querySelector(".spark");
    if (w.charted) spark.innerHTML = w.spark || "";  // server-rendered SVG
    else { const none = document.createElement("span"); none.className = "govuk-body-s app-secondary"; none.textContent = "no trend kept"; spark.replaceChildren(none); }
    const since = row.querySelector(".since time"); since.textContent = w.since_display; since.dateTime = w.since;
    renderAck(row.querySelector(".ack"), w.warning_id, w.acknowledgement);
    place(row);
  }
  const any = body.children.length > 0;
  document.getElementById("warnings").hidden = !any;
  document.getElementById("no-warnings").hidden = any;
  if (w.charted) refreshTiles();
}

function renderStatus(s) {
  document.getElementById("processor-checked").textContent = s.checked_at_display;
  const labels = { ok: ["on time", "govuk-tag--green"], late: ["late", "govuk-tag--red"], unknown: ["not heard from", "govuk-tag--grey"],
                   starting: ["starting", "govuk-tag--grey"] };
  for (const p of s.products) {
    const row = document.querySelector(`#processor-body tr[data-product="${p.derived_product}"]`);
    if (!row) continue;
    const tag = row.querySelector(".state strong");
    tag.textContent = labels[p.state][0]; tag.className = "govuk-tag " + labels[p.state][1];
    row.querySelector(".evaluation").textContent = p.last_evaluation_at_display;
    row.querySelector(".input").textContent = p.last_input_event_at_display;
    row.querySelector(".heartbeat").textContent = p.heartbeat_at_display;
  }
  const list = document.getElementById("processor-late-list");
  list.replaceChildren(...s.late.map((p) => {
    const li = document.createElement("li");
    li.textContent = p.state === "unknown"
      ? `No heartbeat from the processor of ${p.derived_product} has been seen: it may not be running.`
      : `${p.derived_product}: last heartbeat ${p.heartbeat_at_display}, more than its refresh period (${p.refresh_period_s} s) ago.`;
    return li;
  }));
  document.getElementById("processor-banner").hidden = s.late.length === 0;
  document.getElementById("current").classList.toggle("app-stale", s.late.length > 0);  // tiles and rows grey
}

const source = new EventSource("/warnings/stream");
source.addEventListener("warning", (e) => render(JSON.parse(e.data)));
source.addEventListener("status", (e) => renderStatus(JSON.parse(e.data)));
source.addEventListener("acknowledgement", (e) => {
  const a = JSON.parse(e.data);
  const row = document.getElementById(rowId(a.warning_id));
  if (row) renderAck(row.querySelector(".ack"), a.warning_id, a);
});
source.onopen = () => { document.getElementById("live-status").textContent = "Live: connected."; };
source.onerror = () => { document.getElementById("live-status").textContent = "Live: reconnecting…"; };
