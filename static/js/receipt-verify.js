// Checks a ledger receipt in the browser, with WebCrypto's SHA-256 and no
// other code: the same steps as the Python snippet on /ledger/ and
// compensation/ledger.py (canonical JSON, then sha256(prev + ":" + digest)).
//
//   <div data-receipt-verify data-receipt-url=... data-chain-url=...
//        data-entry-id=... data-time-zone=...>     checks one entry's receipt
//   <input type=file data-receipt-file data-target=ID>  checks a saved file
//
// Texts come from #verify-messages (translated by the page).
(function () {
  "use strict";

  var texts = document.getElementById("verify-messages");

  function say(key, values) {
    var attr = "data-" + key;
    var text = (texts && texts.getAttribute(attr)) || key;
    Object.keys(values || {}).forEach(function (name) {
      text = text.split("{" + name + "}").join(String(values[name]));
    });
    return text;
  }

  // Python: json.dumps(value, sort_keys=True, separators=(",", ":"),
  // ensure_ascii=False). JSON.stringify escapes strings the same way
  // (quote, backslash, \b \f \n \r \t, other controls as \u00xx, non-ASCII
  // as is); keys are sorted by code point as Python sorts str.
  function canonical(value) {
    if (value === null || typeof value !== "object") {
      if (typeof value === "number" && !Number.isInteger(value)) {
        throw new Error("receipts hold integers only");
      }
      return JSON.stringify(value);
    }
    if (Array.isArray(value)) {
      return "[" + value.map(canonical).join(",") + "]";
    }
    var keys = Object.keys(value).sort(function (a, b) {
      var x = Array.from(a), y = Array.from(b);
      for (var i = 0; i < Math.min(x.length, y.length); i++) {
        var d = x[i].codePointAt(0) - y[i].codePointAt(0);
        if (d) { return d; }
      }
      return x.length - y.length;
    });
    return "{" + keys.map(function (k) {
      return JSON.stringify(k) + ":" + canonical(value[k]);
    }).join(",") + "}";
  }

  function sha256hex(text) {
    return crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)).then(function (buf) {
      return Array.from(new Uint8Array(buf)).map(function (b) {
        return b.toString(16).padStart(2, "0");
      }).join("");
    });
  }

  function formatWhen(iso, timeZone) {
    var date = new Date(iso);
    if (isNaN(date.getTime())) { return iso; }
    var parts = {};
    try {
      new Intl.DateTimeFormat("en-CA", {
        timeZone: timeZone || undefined, year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", hourCycle: "h23"
      }).formatToParts(date).forEach(function (p) { parts[p.type] = p.value; });
    } catch (e) {
      return date.toLocaleString();
    }
    return parts.year + "-" + parts.month + "-" + parts.day + " " + parts.hour + ":" + parts.minute;
  }

  function Failure(key, values) { this.key = key; this.values = values || {}; }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", cache: "no-store" }).then(function (r) {
      if (!r.ok) { throw new Failure("network"); }
      return r.json();
    }, function () { throw new Failure("network"); });
  }

  function isHex64(s) { return typeof s === "string" && /^[0-9a-f]{64}$/.test(s); }

  function looksLikeReceipt(r) {
    return r && typeof r === "object" && r.entry && typeof r.entry === "object" &&
      Number.isInteger(r.entry.seq) && isHex64(r.body_digest) && isHex64(r.prev_hash) &&
      isHex64(r.hash) && Array.isArray(r.chain_to_head) && r.chain_to_head.every(isHex64);
  }

  // Resolves to {state: "ok"|"pending", key, values}; rejects with a Failure.
  function verify(r, opts) {
    if (!looksLikeReceipt(r)) { return Promise.reject(new Failure("not-receipt")); }
    if (opts.entryId && r.entry.id !== opts.entryId) {
      return Promise.reject(new Failure("wrong-entry"));
    }
    var seq = r.entry.seq, digest, h;
    return sha256hex(canonical(r.entry)).then(function (d) {
      digest = d;
      if (digest !== r.body_digest) { throw new Failure("altered"); }
      return sha256hex(r.prev_hash + ":" + digest);
    }).then(function (link) {
      if (link !== r.hash) { throw new Failure("link"); }
      h = link;
      // The entry's link as the portal publishes it to everybody.
      return getJSON(opts.chainUrl + "?after=" + (seq - 1) + "&through=" + seq);
    }).then(function (chain) {
      var pub = (chain.entries || [])[0];
      if (!pub || pub.seq !== seq || pub.hash !== r.hash) {
        throw new Failure("not-in-chain", { entry: seq });
      }
      var head = r.published_head;
      if (!head) {
        var newer = (chain.published_heads || []).some(function (p) { return p.seq >= seq; });
        if (newer && !opts.fresh) { return { state: "pending", key: "newer-head", values: {} }; }
        if (r.next_head_due) {
          return { state: "pending", key: "pending",
                   values: { entry: seq, when: formatWhen(r.next_head_due, opts.timeZone) } };
        }
        return { state: "pending", key: "pending-unknown", values: { entry: seq } };
      }
      var steps = r.chain_to_head.reduce(function (p, d) {
        return p.then(function () {
          return sha256hex(h + ":" + d).then(function (next) { h = next; });
        });
      }, Promise.resolve());
      return steps.then(function () {
        if (h !== head.hash || head.seq !== seq + r.chain_to_head.length) {
          throw new Failure("head-mismatch", { seq: head.seq });
        }
        return getJSON(opts.chainUrl + "?after=" + (head.seq - 1) + "&through=" + head.seq);
      }).then(function (heads) {
        var published = (heads.published_heads || []).some(function (p) {
          return p.seq === head.seq && p.hash === head.hash;
        });
        if (!published) { throw new Failure("not-published", { seq: head.seq }); }
        return { state: "ok", key: "ok",
                 values: { seq: head.seq, when: formatWhen(head.published_at, opts.timeZone) } };
      });
    });
  }

  function show(el, state, key, values) {
    el.dataset.state = state;
    el.className = "verify-result verify-" + state;
    el.textContent = say(key, values);
  }

  function run(el, load, opts) {
    if (!(window.crypto && crypto.subtle && window.TextEncoder)) {
      show(el, "fail", "unsupported");
      return Promise.resolve();
    }
    show(el, "checking", "checking");
    return load().then(function (receipt) {
      return verify(receipt, opts);
    }).then(function (result) {
      show(el, result.state, result.key, result.values);
    }, function (err) {
      if (err instanceof Failure) { show(el, "fail", err.key, err.values); }
      else { show(el, "fail", "not-receipt"); }
    });
  }

  document.querySelectorAll("[data-receipt-verify]").forEach(function (el) {
    var opts = { chainUrl: el.dataset.chainUrl, entryId: el.dataset.entryId,
                 timeZone: el.dataset.timeZone, fresh: true };
    var again = el.parentNode.querySelector("[data-verify-again]") ||
      document.querySelector("[data-verify-again]");
    function go() {
      return run(el, function () { return getJSON(el.dataset.receiptUrl); }, opts)
        .then(function () { if (again) { again.hidden = false; } });
    }
    if (again) { again.addEventListener("click", go); }
    go();
  });

  // Print buttons need script (CSP forbids inline handlers): shown only here.
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () { window.print(); });
  });

  document.querySelectorAll("[data-receipt-file]").forEach(function (input) {
    var el = document.getElementById(input.dataset.target);
    input.addEventListener("change", function () {
      var file = input.files && input.files[0];
      if (!file || !el) { return; }
      var opts = { chainUrl: el.dataset.chainUrl, timeZone: el.dataset.timeZone, fresh: false };
      run(el, function () {
        return file.text().then(function (text) {
          try { return JSON.parse(text); } catch (e) { throw new Failure("not-receipt"); }
        });
      }, opts);
    });
  });
})();
