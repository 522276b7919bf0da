// Live countdowns to deadlines: <span data-countdown="ISO-8601" data-closed-text="...">.
(function () {
  "use strict";
  function pad(n) { return String(n).padStart(2, "0"); }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      var left = Math.floor((Date.parse(el.dataset.countdown) - now) / 1000);
      if (isNaN(left)) { return; }
      if (left <= 0) {
        el.textContent = el.dataset.closedText || "0:00:00";
        el.classList.add("is-closed");
        return;
      }
      var h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
      el.textContent = h + ":" + pad(m) + ":" + pad(s);
      el.classList.toggle("is-urgent", left < 3 * 3600);
    });
  }
  tick();
  setInterval(tick, 1000);
})();
