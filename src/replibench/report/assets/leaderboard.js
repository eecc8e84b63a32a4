// replibench leaderboard: sorting, filtering and the provenance rows. Inlined into
// leaderboard.html; no network access, no libraries. Each leaderboard row is one <tbody> holding
// the visible row and its hidden details row, so sorting moves both together.
(function () {
  "use strict";
  const table = document.getElementById("leaderboard");
  const count = document.getElementById("shown-count");
  const search = document.getElementById("filter-text");
  const selects = Array.from(document.querySelectorAll("select[data-filter]"));
  const entries = () => Array.from(table.tBodies);

  // Missing values ("") sort last in both directions; text compares with numbers inside (h96 < h192).
  function compareValues(a, b, numeric, ascending) {
    if (a === "" || b === "") return (a === "") - (b === "");
    const order = numeric ? parseFloat(a) - parseFloat(b) : a.localeCompare(b, undefined, { numeric: true });
    return ascending ? order : -order;
  }

  function sortBy(header) {
    const index = header.cellIndex;
    const numeric = header.dataset.type === "number";
    const ascending = header.getAttribute("aria-sort") !== "ascending";
    for (const cell of table.tHead.rows[0].cells) cell.setAttribute("aria-sort", "none");
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    const keyed = entries().map((body, position) => ({ body, position, value: body.rows[0].cells[index].dataset.value }));
    keyed.sort((x, y) => compareValues(x.value, y.value, numeric, ascending) || x.position - y.position);
    for (const item of keyed) table.appendChild(item.body);
  }

  function applyFilters() {
    const text = search.value.trim().toLowerCase();
    let shown = 0;
    const all = entries();
    for (const body of all) {
      const visible = selects.every((select) => !select.value || body.dataset[select.dataset.filter] === select.value) &&
        (!text || body.rows[0].textContent.toLowerCase().includes(text));
      body.hidden = !visible;
      if (visible) shown += 1;
    }
    count.textContent = shown + " of " + all.length + " rows";
  }

  function toggle(row, open) {
    const details = row.nextElementSibling;
    const show = open === undefined ? details.hidden : open;
    details.hidden = !show;
    row.setAttribute("aria-expanded", String(show));
  }

  table.tHead.addEventListener("click", (event) => {
    const header = event.target.closest("th");
    if (header) sortBy(header);
  });
  table.addEventListener("click", (event) => {
    const row = event.target.closest("tr.row");
    if (row && !event.target.closest("a")) toggle(row);
  });
  table.addEventListener("keydown", (event) => {
    if ((event.key === "Enter" || event.key === " ") && event.target.matches("tr.row")) {
      event.preventDefault();
      toggle(event.target);
    }
  });
  for (const select of selects) select.addEventListener("change", applyFilters);
  search.addEventListener("input", applyFilters);

  // leaderboard.html#row-12 opens row 12's provenance (links from elsewhere land on it).
  function openFromHash() {
    const row = location.hash ? document.getElementById(location.hash.slice(1)) : null;
    if (row && row.matches("tr.row")) {
      row.closest("tbody").hidden = false;
      toggle(row, true);
      row.scrollIntoView({ block: "center" });
    }
  }
  window.addEventListener("hashchange", openFromHash);
  applyFilters();
  openFromHash();
  document.documentElement.dataset.ready = "true";
})();
