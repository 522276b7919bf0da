// The phone menu: a real <button aria-expanded aria-controls> that shows and
// hides the navigation. Without JavaScript the button stays hidden and the
// navigation is simply shown (progressive enhancement, CSP-safe: no inline code).
(function () {
  "use strict";
  var button = document.querySelector(".nav-toggle");
  var nav = button && document.getElementById(button.getAttribute("aria-controls"));
  if (!button || !nav) { return; }
  var header = button.closest(".site-header");
  header.classList.add("has-menu-button");
  button.hidden = false;
  function set(open) {
    button.setAttribute("aria-expanded", open ? "true" : "false");
    header.classList.toggle("menu-open", open);
  }
  button.addEventListener("click", function () {
    // A disclosure: focus stays on the button; the menu follows it in tab order.
    set(button.getAttribute("aria-expanded") !== "true");
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && button.getAttribute("aria-expanded") === "true") {
      set(false);
      button.focus();
    }
  });
})();
