// The live chat panel: asks POST /api/v1/assistant/ and shows the answer in
// place. Without this script the panel is a plain form that posts to the
// assistant page, so everything works with scripts off. No inline code
// (script-src 'self'), DOM built with textContent only.
(function () {
  "use strict";
  var form = document.querySelector("[data-assistant-form]");
  var log = document.querySelector("[data-assistant-log]");
  if (!form || !log || !window.fetch) { return; }
  var text = function (name) { return form.getAttribute("data-text-" + name) || ""; };
  var csrf = function () {
    var input = form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  };
  var el = function (tag, cls, content) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (content) { node.textContent = content; }
    return node;
  };
  // What the server keeps of a question (portal.assistant.nlu.visible):
  // no control or bidi characters, so the echo reads as the record does.
  var visible = function (value) {
    return value.replace(/\s/g, " ").replace(/\p{C}/gu, "").trim();
  };
  // The server only ever cites paths on this site; anything else is dropped.
  var local = function (url) {
    return typeof url === "string" && url.charAt(0) === "/" && url.charAt(1) !== "/" && url.charAt(1) !== "\\";
  };
  var post = function (url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrf() },
      body: JSON.stringify(body)
    });
  };

  function feedback(questionId) {
    var box = el("div", "assistant-feedback");
    box.appendChild(el("span", "muted", text("helpful")));
    [[true, text("yes-short"), text("yes")], [false, text("no-short"), text("no")]].forEach(function (choice) {
      var button = el("button", "link-button", choice[1]);
      button.type = "button";
      button.setAttribute("aria-label", choice[2]);
      button.addEventListener("click", function () {
        post(form.getAttribute("data-feedback-api"), { question_id: questionId, helpful: choice[0] })
          .then(function () { box.textContent = text("thanks"); });
      });
      box.appendChild(button);
    });
    return box;
  }

  function nextStep(step) {
    if (step.kind === "support" && local(step.url)) {
      var support = el("form", "inline-form");
      support.method = "post";
      support.action = step.url;
      var token = el("input");
      token.type = "hidden";
      token.name = "csrfmiddlewaretoken";
      token.value = csrf();
      support.appendChild(token);
      var button = el("button", "button button-small", step.label);
      button.type = "submit";
      button.setAttribute("data-testid", "assistant-support");
      support.appendChild(button);
      return support;
    }
    var p = el("p");
    if (!local(step.url)) { return p; }
    var a = el("a", "button button-small", step.label);
    a.href = step.url;
    a.setAttribute("data-testid", "assistant-next");
    p.appendChild(a);
    return p;
  }

  function show(question, data) {
    var item = el("li", "assistant-turn");
    item.setAttribute("data-testid", "assistant-turn");
    item.appendChild(el("p", "assistant-q", visible(question)));
    var answer = el("div", "assistant-a");
    answer.setAttribute("data-testid", "assistant-answer");
    answer.appendChild(el("p", "", data.answer));
    if (data.links && data.links.length) {
      var list = el("ul", "assistant-links");
      list.setAttribute("aria-label", text("sources"));
      data.links.forEach(function (link) {
        if (!local(link.url)) { return; }
        var li = el("li");
        var a = el("a", "", link.label);
        a.href = link.url;
        li.appendChild(a);
        list.appendChild(li);
      });
      answer.appendChild(list);
    }
    if (data.next_step) { answer.appendChild(nextStep(data.next_step)); }
    if (data.question_id) { answer.appendChild(feedback(data.question_id)); }
    item.appendChild(answer);
    log.appendChild(item);
    log.scrollTop = log.scrollHeight;
    return item;
  }

  form.addEventListener("submit", function (event) {
    var field = form.querySelector("textarea[name=question]");
    var question = field.value.trim();
    if (!question) { return; }
    event.preventDefault();
    var button = form.querySelector("button[type=submit]");
    button.disabled = true;
    var waiting = el("li", "muted", text("wait"));
    waiting.setAttribute("role", "status");
    log.appendChild(waiting);
    post(form.getAttribute("data-api"), { question: question })
      .then(function (response) {
        return response.json().then(function (data) { return { ok: response.ok, data: data }; });
      })
      .then(function (result) {
        waiting.remove();
        if (!result.ok) {
          log.appendChild(el("li", "message message-error", result.data.detail || text("error")));
          return;
        }
        show(question, result.data);
        field.value = "";
      })
      .catch(function () {
        waiting.remove();
        log.appendChild(el("li", "message message-error", text("error")));
      })
      .then(function () { button.disabled = false; field.focus(); });
  });
})();
