// The history page's first page follows new transitions live, if they match its filters.
const table = document.getElementById("history");
if (table && table.dataset.live === "yes") {
  const filter = JSON.parse(table.dataset.filter);
  const tbody = document.getElementById("history-body");
  const newest = () => Math.max(0, ...[...tbody.querySelectorAll("tr[data-id]")].map((r) => Number(r.dataset.id)));
  const matches = (w) =>
    (!filter.severity || w.severity === filter.severity) &&
    (!filter.area || w.group_code === filter.area || w.group_name.toLowerCase().includes(filter.area.toLowerCase())) &&
    (!filter.since || new Date(w.evidence_at) >= new Date(filter.since)) &&
    (!filter.until || new Date(w.evidence_at) < new Date(filter.until));
  function cell(row, content) { const td = document.createElement("td"); td.className = "govuk-table__cell"; td.append(content); row.appendChild(td); return td; }
  const source = new EventSource("/warnings/stream");
  source.addEventListener("warning", (e) => {
    const w = JSON.parse(e.data);
    if (!(w.id > newest()) || !matches(w)) return;  // already listed (or older), or filtered out
    const row = document.createElement("tr");
    row.className = "govuk-table__row history-row"; row.dataset.id = w.id; row.dataset.eventId = w.event_id;
    const when = document.createElement("time"); when.dateTime = w.evidence_at; when.textContent = w.evidence_display; cell(row, when);
    const link = document.createElement("a"); link.className = "govuk-link"; link.href = "/warnings/" + encodeURIComponent(w.warning_id);
    link.textContent = w.group_name + (w.level_note || ""); cell(row, link);
    cell(row, w.transition);
    const sev = document.createElement("span"); sev.className = "app-sev app-sev--" + w.severity; sev.textContent = w.severity; cell(row, sev);
    cell(row, w.message);
    document.getElementById("history-empty")?.remove();
    tbody.prepend(row);
    const count = document.getElementById("result-count");
    if (count) count.textContent = count.textContent.replace(/^(\d+) transitions?/, (_, n) =>
      `${Number(n) + 1} transition${Number(n) + 1 === 1 ? "" : "s"}`);
  });
}
