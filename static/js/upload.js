// Upload progress for forms marked data-upload-progress. Without JavaScript
// the form posts normally; with it, the same POST goes through XHR so the
// member sees how far a large screenshot has got.
(function () {
  "use strict";
  document.querySelectorAll("form[data-upload-progress]").forEach(function (form) {
    var bar = form.querySelector(".upload-progress");
    form.addEventListener("submit", function (event) {
      if (!window.FormData || !bar) { return; }
      event.preventDefault();
      var button = form.querySelector("button[type=submit]");
      if (button) { button.disabled = true; }  // one click, one appeal
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action || window.location.href);
      bar.hidden = false;
      xhr.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable) { bar.value = Math.round((e.loaded / e.total) * 100); }
      });
      xhr.addEventListener("load", function () {
        if (xhr.responseURL && xhr.responseURL.split("#")[0] !== window.location.href.split("#")[0]) {
          window.location.assign(xhr.responseURL);
        } else {
          document.open();
          document.write(xhr.responseText);
          document.close();
        }
      });
      xhr.addEventListener("error", function () {
        if (button) { button.disabled = false; }
        bar.hidden = true;
        form.submit();
      });
      xhr.send(new FormData(form));
    });
  });
})();
