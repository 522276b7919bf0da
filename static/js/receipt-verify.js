// Checks a ledger receipt in the browser, with WebCrypto (SHA-256, Ed25519)
// and no other code: the same steps as the Python snippets on /ledger/.
//
// Version 2 (the transparency log, compensation/receipts.py): the leaf data
// must be the canonical JSON of the entry; its RFC 9162 leaf hash
// SHA-256(0x00 || leaf) and the inclusion proof (RFC 9162 §2.1.3.2) must lead
// to the root of the checkpoint, a C2SP signed note whose Ed25519 signature
// must verify with one of the verifier keys the page embeds.
// Version 1 (the hash chain): canonical JSON, then sha256(prev + ":" +
// digest), walked to a head the portal published.
//
//   <div data-receipt-verify data-receipt-url=... data-chain-url=...
//        data-checkpoint-url=... data-log-keys=...
//        data-entry-id=... data-time-zone=...>     checks one entry's receipt
//   <input type=file data-receipt-file data-target=ID>  checks a saved file
//        (the target carries the same data-* URLs and keys)
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

  function hex(bytes) {
    return Array.from(bytes).map(function (b) { return b.toString(16).padStart(2, "0"); }).join("");
  }

  function sha256hex(text) {
    return crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)).then(function (buf) {
      return hex(new Uint8Array(buf));
    });
  }

  function sha256(bytes) {
    return crypto.subtle.digest("SHA-256", bytes).then(function (buf) {
      return new Uint8Array(buf);
    });
  }

  function concat() {
    var parts = Array.from(arguments), size = 0, at = 0;
    parts.forEach(function (p) { size += p.length; });
    var out = new Uint8Array(size);
    parts.forEach(function (p) { out.set(p, at); at += p.length; });
    return out;
  }

  function sameBytes(a, b) {
    if (a.length !== b.length) { return false; }
    for (var i = 0; i < a.length; i++) { if (a[i] !== b[i]) { return false; } }
    return true;
  }

  // Standard, padded base64 in its canonical spelling only (as the portal
  // writes it); null for anything else.
  function unbase64(text) {
    if (typeof text !== "string" || text.length % 4 ||
        !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) { return null; }
    var raw;
    try { raw = atob(text); } catch (e) { return null; }
    var bytes = Uint8Array.from(raw, function (c) { return c.charCodeAt(0); });
    return btoa(raw) === text ? bytes : null;
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

  function isHash64(s) { var b = unbase64(s); return b !== null && b.length === 32; }

  function looksLikeReceiptV2(r) {
    if (!(r && typeof r === "object" && r.receipt_version === 2 && r.entry &&
          typeof r.entry === "object" && !Array.isArray(r.entry) &&
          Number.isInteger(r.entry.seq) && r.entry.seq > 0 && isHex64(r.body_digest) &&
          "log" in r)) { return false; }
    var log = r.log;
    if (log === null) { return true; }
    return typeof log === "object" && Number.isInteger(log.index) && log.index >= 0 &&
      typeof log.leaf_data === "string" && typeof log.checkpoint === "string" &&
      Array.isArray(log.proof) && log.proof.length <= 64 && log.proof.every(isHash64);
  }

  function looksLikeReceipt(r) {
    return r && typeof r === "object" && r.entry && typeof r.entry === "object" &&
      Number.isInteger(r.entry.seq) && isHex64(r.body_digest) && isHex64(r.prev_hash) &&
      isHex64(r.hash) && Array.isArray(r.chain_to_head) && r.chain_to_head.every(isHex64);
  }

  // Resolves to {state: "ok"|"pending", key, values}; rejects with a Failure.
  function verify(r, opts) {
    if (r && typeof r === "object" && r.receipt_version === 2) {
      if (!looksLikeReceiptV2(r)) { return Promise.reject(new Failure("not-receipt")); }
      return verifyV2(r, opts);
    }
    return verifyV1(r, opts);
  }

  // --- version 2: the transparency log --------------------------------------

  // A verifier key in note format, <name>+<8 hex key ID>+<base64(0x01 || key)>;
  // its key ID must be SHA-256(name || 0x0A || 0x01 || key)[:4]. Only the
  // first two "+" separate: a name has none, but base64 may ("+" is a digit).
  function parseKey(text) {
    var parts = String(text).trim().split("+");
    parts = parts.length < 3 ? parts : [parts[0], parts[1], parts.slice(2).join("+")];
    if (parts.length !== 3 || !parts[0] || !/^[0-9a-f]{8}$/i.test(parts[1])) {
      return Promise.resolve(null);
    }
    var raw = unbase64(parts[2]);
    if (!raw || raw.length !== 33 || raw[0] !== 0x01) { return Promise.resolve(null); }
    var name = new TextEncoder().encode(parts[0]);
    return sha256(concat(name, new Uint8Array([0x0a]), raw)).then(function (digest) {
      if (hex(digest.subarray(0, 4)) !== parts[1].toLowerCase()) { return null; }
      return { name: parts[0], keyId: parts[1].toLowerCase(), pub: raw.subarray(1) };
    });
  }

  // A C2SP signed note holding a tlog-checkpoint: the text (origin, size,
  // base64 root, extensions), then a blank line and "— <name> <base64>" lines.
  function parseCheckpoint(note) {
    var split = note.lastIndexOf("\n\n");
    if (split < 0 || !note.endsWith("\n")) { return null; }
    var text = note.slice(0, split + 1), lines = text.slice(0, -1).split("\n");
    if (lines.length < 3 || lines.some(function (l) { return !l; })) { return null; }
    if (!/^(0|[1-9][0-9]{0,14})$/.test(lines[1])) { return null; }
    var root = unbase64(lines[2]);
    if (!root || root.length !== 32) { return null; }
    var sigs = [];
    var ok = note.slice(split + 2, -1).split("\n").every(function (line) {
      var m = /^\u2014 ([^ +]+) ([A-Za-z0-9+/=]+)$/.exec(line);
      var blob = m && unbase64(m[2]);
      if (!blob || blob.length < 5) { return false; }
      sigs.push({ name: m[1], keyId: hex(blob.subarray(0, 4)), sig: blob.subarray(4) });
      return true;
    });
    if (!ok) { return null; }
    return { text: text, origin: lines[0], size: Number(lines[1]), root: root, sigs: sigs };
  }

  // RFC 9162 §2.1.3.2: the root the inclusion proof leads to from leaf
  // ``index`` of a tree of ``size`` leaves, or null if the proof cannot fit.
  function rootFromProof(index, size, leafHash, proof) {
    if (index >= size) { return Promise.resolve(null); }
    var fn = index, sn = size - 1, r = leafHash, step = Promise.resolve(), bad = false;
    var one = new Uint8Array([0x01]);
    proof.forEach(function (p) {
      if (bad) { return; }
      if (sn === 0) { bad = true; return; }
      var left = fn % 2 === 1 || fn === sn;
      if (left) {
        while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
      }
      step = step.then(function () {
        return sha256(left ? concat(one, p, r) : concat(one, r, p)).then(function (h) { r = h; });
      });
      fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
    });
    if (bad || sn !== 0) { return Promise.resolve(null); }
    return step.then(function () { return r; });
  }

  function ed25519Verify(pub, sig, message) {
    var alg = { name: "Ed25519" };
    return crypto.subtle.importKey("raw", pub, alg, false, ["verify"]).then(function (key) {
      return crypto.subtle.verify(alg, key, sig, message);
    }, function () { throw new Failure("unsupported-ed25519"); });
  }

  function getText(url) {
    return fetch(url, { cache: "no-store" }).then(function (r) {
      if (!r.ok) { throw new Failure("network"); }
      return r.text();
    }, function () { throw new Failure("network"); });
  }

  function verifyV2(r, opts) {
    if (opts.entryId && r.entry.id !== opts.entryId) {
      return Promise.reject(new Failure("wrong-entry"));
    }
    var seq = r.entry.seq, log = r.log, canon, cp, found;
    try {
      canon = new TextEncoder().encode(canonical(r.entry));
    } catch (e) {
      return Promise.reject(new Failure("not-receipt"));
    }
    return sha256(canon).then(function (digest) {
      if (hex(digest) !== r.body_digest) { throw new Failure("altered"); }
      if (log === null) { return pendingV2(r, opts); }
      var leaf = unbase64(log.leaf_data);
      if (!leaf || !sameBytes(leaf, canon)) { throw new Failure("leaf-altered"); }
      if (log.index !== seq - 1) { throw new Failure("wrong-index", { entry: seq }); }
      cp = parseCheckpoint(log.checkpoint);
      if (!cp) { throw new Failure("bad-checkpoint"); }
      var proof = log.proof.map(unbase64);
      return sha256(concat(new Uint8Array([0x00]), leaf)).then(function (leafHash) {
        return rootFromProof(log.index, cp.size, leafHash, proof);
      }).then(function (root) {
        if (!root || !sameBytes(root, cp.root)) {
          throw new Failure("proof-mismatch", { size: cp.size });
        }
        return Promise.all(opts.logKeys.map(parseKey));
      }).then(function (keys) {
        keys = keys.filter(Boolean);
        if (!keys.length) { throw new Failure("no-key"); }
        cp.sigs.some(function (s) {
          found = keys.filter(function (k) { return k.name === s.name && k.keyId === s.keyId; })
            .map(function (k) { return { key: k, sig: s }; })[0];
          return !!found;
        });
        if (!found) { throw new Failure("unknown-key", { key: keys[0].name + "+" + keys[0].keyId }); }
        if (found.sig.sig.length !== 64) { throw new Failure("bad-signature", { key: found.key.keyId }); }
        return ed25519Verify(found.key.pub, found.sig.sig, new TextEncoder().encode(cp.text));
      }).then(function (valid) {
        if (!valid) { throw new Failure("bad-signature", { key: found.key.keyId }); }
        return { state: "ok", key: "ok-log",
                 values: { entry: seq, size: cp.size, origin: cp.origin, key: found.key.keyId } };
      });
    });
  }

  // Intact, but newer than the checkpoint the receipt was made against: a
  // saved file may be covered by a checkpoint signed since.
  function pendingV2(r, opts) {
    var seq = r.entry.seq;
    var later = (opts.fresh || !opts.checkpointUrl) ? Promise.resolve(null) :
      getText(opts.checkpointUrl).then(parseCheckpoint, function () { return null; });
    return later.then(function (cp) {
      if (cp && cp.size >= seq) { return { state: "pending", key: "newer-checkpoint", values: {} }; }
      if (r.next_checkpoint_due) {
        return { state: "pending", key: "pending-log",
                 values: { entry: seq, when: formatWhen(r.next_checkpoint_due, opts.timeZone) } };
      }
      return { state: "pending", key: "pending-log-unknown", values: { entry: seq } };
    });
  }

  // --- version 1: the hash chain ----------------------------------------------

  function verifyV1(r, opts) {
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

  function options(el, fresh) {
    return { chainUrl: el.dataset.chainUrl, checkpointUrl: el.dataset.checkpointUrl,
             logKeys: (el.dataset.logKeys || "").split(/\s+/).filter(Boolean),
             timeZone: el.dataset.timeZone, fresh: fresh };
  }

  document.querySelectorAll("[data-receipt-verify]").forEach(function (el) {
    var opts = options(el, true);
    opts.entryId = el.dataset.entryId;
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
      var opts = options(el, false);
      run(el, function () {
        return file.text().then(function (text) {
          try { return JSON.parse(text); } catch (e) { throw new Failure("not-receipt"); }
        });
      }, opts);
    });
  });
})();
