// Show the filing deadline as soon as the member enters when the disconnect
// ended: policy window after the end, in the member's own time zone.
(function () {
  "use strict";
  var preview = document.querySelector(".deadline-preview");
  var end = document.querySelector("input[name=claimed_end]");
  if (!preview || !end) { return; }
  var hours = parseInt(preview.dataset.windowHours, 10);
  var offset = parseInt(preview.dataset.utcOffset, 10);  // member's zone, minutes east of UTC
  function pad(n) { return String(n).padStart(2, "0"); }
  function update() {
    var m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(end.value || "");
    if (!m) { preview.hidden = true; return; }
    // Wall-clock time in the member's zone -> instant -> + window.
    var utc = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]) - offset * 60000 + hours * 3600000;
    var wall = new Date(utc + offset * 60000);
    preview.querySelector("[data-role=deadline]").textContent =
      wall.getUTCFullYear() + "-" + pad(wall.getUTCMonth() + 1) + "-" + pad(wall.getUTCDate()) + " " +
      pad(wall.getUTCHours()) + ":" + pad(wall.getUTCMinutes());
    preview.querySelector("[data-role=countdown]").dataset.countdown = new Date(utc).toISOString();
    preview.hidden = false;
  }
  end.addEventListener("input", update);
  update();
})();
