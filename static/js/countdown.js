// Deadlines from {% deadline %} (members/templatetags/deadlines.py): the page
// already says "23 h 33 min left (until 1 Dec 18:09)" as text; this only keeps
// the relative part current, once a minute, without hiding anything.
(function () {
  "use strict";
  function fill(t, v) { return t.replace(/\{(\w)\}/g, function (_, k) { return v[k]; }); }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-deadline]").forEach(function (el) {
      var rel = el.querySelector("[data-role=relative]");
      var left = Math.floor((Date.parse(el.dataset.deadline) - now) / 1000);
      if (!rel || isNaN(left)) { return; }
      var ds = el.dataset, mins = Math.floor(left / 60);
      var d = Math.floor(mins / 1440), h = Math.floor((mins % 1440) / 60), m = mins % 60;
      var text;
      if (left <= 0) { text = ds.fmtPast; el.classList.add("is-closed"); }
      else if (left < 60) { text = ds.fmtSoon; }
      else if (d) { text = fill(ds.fmtDays, { d: d, h: h }); }
      else if (h) { text = fill(ds.fmtHm, { h: h, m: m }); }
      else { text = fill(ds.fmtM, { m: m }); }
      if (rel.textContent !== text) { rel.textContent = text; }
      el.classList.toggle("is-urgent", left > 0 && left < 3 * 3600);
    });
  }
  tick();
  setInterval(tick, 30000);
})();
