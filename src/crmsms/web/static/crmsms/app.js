// crmsms: small progressive enhancements. Everything works without JavaScript.
(function () {
  "use strict";
  // GSM 03.38 basic and extension tables: a text outside them is sent as UCS-2.
  var BASIC = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
  var EXTENDED = "^{}\\[~]|€\f";
  // Invisible spaces the server replaces by a plain one (DESIGN §5): they never cost UCS-2.
  var INVISIBLE = /[\u00A0\u202F\u2007]/g;
  // Characters that look like GSM ones but force UCS-2 (they come from word processors).
  var LOOKALIKES = { "\u2019": "'", "\u2018": "'", "\u201C": '"', "\u201D": '"', "\u00AB": '"', "\u00BB": '"',
    "\u2013": "-", "\u2014": "-", "\u2026": "..." };
  var PLACEHOLDER = /\{\{[^{}]*\}\}/g;

  // Parts as the server counts them (smsutil): one part up to 160 septets / 70 UTF-16 units,
  // else parts of 153 / 67 filled greedily, never splitting an escape (2 septets) or an
  // emoji (2 units) across two parts.
  function parts(costs, single, multi) {
    var total = costs.reduce(function (a, b) { return a + b; }, 0);
    if (total <= single) return costs.length ? 1 : 0;
    var count = 1, used = 0;
    costs.forEach(function (cost) {
      if (used + cost > multi) { count += 1; used = 0; }
      used += cost;
    });
    return count;
  }

  function measure(text) {
    text = text.replace(/\r\n?/g, "\n").replace(INVISIBLE, " "); // as the server stores it
    var chars = Array.from(text), forcing = [];
    var septets = chars.map(function (c) {
      if (BASIC.indexOf(c) >= 0) return 1;
      if (EXTENDED.indexOf(c) >= 0) return 2;
      if (forcing.indexOf(c) < 0) forcing.push(c);
      return 0;
    });
    if (!forcing.length) return { chars: chars.length, encoding: "GSM-7", parts: parts(septets, 160, 153), forcing: [] };
    var units = chars.map(function (c) { return c.length; });
    return { chars: chars.length, encoding: "UCS-2", parts: parts(units, 70, 67), forcing: forcing };
  }

  function figures(chars, max, encoding, count) {
    return chars + " / " + max + " characters · " + encoding + " · " + count + " part" + (count === 1 ? "" : "s");
  }

  document.querySelectorAll("[data-editor]").forEach(function (editor) {
    var form = editor.closest("form");
    var field = editor.querySelector("textarea");
    var counter = editor.querySelector("[data-counter]");
    var max = parseInt(counter.getAttribute("data-max"), 10);
    var ucs2 = editor.querySelector("[data-ucs2]");
    var replace = editor.querySelector("[data-replace-lookalikes]");
    var problems = editor.querySelector("[data-problems]");
    var preview = editor.querySelector("[data-preview]");
    var module = editor.getAttribute("data-module");
    var hasRecord = !!editor.getAttribute("data-record");
    var serverErrors = editor.querySelectorAll(".field > .error");
    var timer = null;
    var asked = 0; // answers can arrive out of order: only the latest question's answer counts

    function fieldList() {
      return editor.querySelector("select[data-fields-for='" + module + "']");
    }

    function update(edited) {
      if (edited) serverErrors.forEach(function (e) { e.remove(); }); // stale once the text changes
      // Variables are filled in later: count the text around them, and say so.
      var literal = field.value.replace(PLACEHOLDER, "");
      var m = measure(literal);
      var hasVariables = literal !== field.value;
      counter.textContent = figures(m.chars, max, m.encoding, m.parts) +
        (hasVariables ? (hasRecord ? " before the variables are filled in" : " + the variables") : "");
      counter.classList.toggle("over", m.chars > max);
      ucs2.hidden = !m.forcing.length;
      if (m.forcing.length) {
        ucs2.querySelector("[data-ucs2-text]").textContent = "Sent as UCS-2 (70 characters a part instead of 160) because of: " +
          m.forcing.join(" ") + ".";
        replace.hidden = !m.forcing.some(function (c) { return c in LOOKALIKES; });
      }
      clearTimeout(timer);
      timer = setTimeout(refreshPreview, 300);
    }

    function refreshPreview() {
      var data = new FormData();
      data.append("module", module);
      data.append("body", field.value);
      data.append("record", editor.getAttribute("data-record") || "");
      var sendAt = form.querySelector("[name=send_at]"); // {{ today }} is the sending day
      if (sendAt) data.append("send_at", sendAt.value);
      data.append("csrfmiddlewaretoken", form.querySelector("[name=csrfmiddlewaretoken]").value);
      var question = ++asked;
      fetch(editor.getAttribute("data-preview-url"), { method: "POST", body: data, credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (result) {
          if (question !== asked) return;
          problems.textContent = "";
          var found = result.problems || [];
          if (!serverErrors.length || !document.contains(serverErrors[0])) {
            found.forEach(function (p) {
              var li = document.createElement("li");
              li.textContent = p.message;
              problems.appendChild(li);
            });
          }
          if (!preview) return;
          preview.hidden = !(result.text && !found.length);
          if (preview.hidden) return;
          preview.querySelector("[data-preview-text]").textContent = result.text;
          var over = result.characters > max;
          var meta = figures(result.characters, max, result.encoding, result.segments) +
            (over ? ": over the limit, it cannot be saved" : "");
          if (result.empty && result.empty.length) meta += " · empty for this recipient: " + result.empty.join(", ");
          var metaLine = preview.querySelector("[data-preview-meta]");
          metaLine.textContent = meta;
          metaLine.classList.toggle("error", over);
          // For this recipient the preview is the truth: the counter shows its figures.
          counter.textContent = figures(result.characters, max, result.encoding, result.segments) + " as it will leave";
          counter.classList.toggle("over", over);
        })
        .catch(function () { /* the preview is a help; saving still validates everything */ });
    }

    // « Copy the selected field »: copies the placeholder and inserts it at the cursor.
    editor.querySelector("[data-copy-field]").addEventListener("click", function () {
      var placeholder = fieldList().value;
      var start = field.selectionStart, end = field.selectionEnd;
      field.setRangeText(placeholder, start, end, "end");
      field.focus();
      if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(placeholder).catch(function () {});
      editor.querySelector("[data-copied]").textContent = placeholder + " inserted";
      update(true);
    });

    replace.addEventListener("click", function () {
      var text = field.value;
      Object.keys(LOOKALIKES).forEach(function (c) { text = text.split(c).join(LOOKALIKES[c]); });
      field.value = text.replace(INVISIBLE, " ");
      update(true);
    });

    var templateSelect = form && form.querySelector("select[name=template]");
    var chosenTemplate = templateSelect ? templateSelect.value : "";

    if (form) form.addEventListener("change", function (event) {
      // The template form: its field list follows « based on Contacts or Accounts ».
      if (event.target.name === "module") {
        module = event.target.value;
        editor.querySelectorAll("select[data-fields-for]").forEach(function (s) {
          var mine = s.getAttribute("data-fields-for") === module;
          s.hidden = !mine; s.disabled = !mine;
        });
        update(true);
      }
      if (event.target.name === "send_at") update(false);
      if (event.target === templateSelect) {
        var bodies = JSON.parse(document.getElementById("sms-template-bodies").textContent);
        var body = bodies[templateSelect.value];
        if (body === undefined) { chosenTemplate = templateSelect.value; return; }
        if (!field.value.trim() || field.value === body || window.confirm("Replace the text with the template's?")) {
          field.value = body;
          chosenTemplate = templateSelect.value;
          update(true);
        } else {
          templateSelect.value = chosenTemplate; // the text stays, and so does the template it came from
        }
      }
    });

    field.addEventListener("input", function () { update(true); });
    update(false);
  });

  // The submit button says what it will do: "Save draft" or "Save and send".
  document.querySelectorAll("[data-sms-form]").forEach(function (form) {
    var button = form.querySelector("button[type=submit][data-label-draft]");
    function update() {
      var checked = form.querySelector("input[name=status]:checked");
      if (button && checked) button.textContent = button.getAttribute("data-label-" + checked.value) || "Save";
    }
    form.addEventListener("change", update);
    update();
  });

  // Buttons that cannot be undone ask first.
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
    });
  });

  // A form is submitted once: a double click does not send it twice (the server also
  // refuses a second submission of the same form).
  document.querySelectorAll("form[method=post]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (event.defaultPrevented) return;
      if (form.dataset.submitted) { event.preventDefault(); return; }
      form.dataset.submitted = "1";
    });
  });

  // On a phone the module bar scrolls sideways: show the current module.
  var current = document.querySelector(".modules [aria-current=page]");
  if (current && current.scrollIntoView) current.scrollIntoView({ block: "nearest", inline: "center" });

  window.addEventListener("pageshow", function (event) {
    if (event.persisted) document.querySelectorAll("form[data-submitted]").forEach(function (f) { delete f.dataset.submitted; });
  });

  // A panel marked data-live (messages on their way) refreshes itself every 2 s until
  // nothing in it is in flight any more, so "To be sent" turns into "Sent" on its own.
  document.querySelectorAll("[data-live][id]").forEach(function (panel) {
    var id = panel.id, rounds = 0;
    function refresh() {
      rounds += 1;
      fetch(window.location.href, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) {
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(id);
          var current = document.getElementById(id);
          if (!fresh || !current) return;
          current.replaceWith(fresh);
          // Every 2 s for two minutes, then every 10 s: a long campaign is still followed.
          if (fresh.hasAttribute("data-live")) setTimeout(refresh, rounds < 60 ? 2000 : 10000);
        })
        .catch(function () { setTimeout(refresh, 5000); });
    }
    setTimeout(refresh, 2000);
  });

  // A campaign's sending hours: the times and days look inactive while the box is unticked
  // (they are kept, for when it is ticked again).
  document.querySelectorAll("fieldset.sending-hours").forEach(function (fieldset) {
    var box = fieldset.querySelector("input[name=respect_hours]");
    if (!box) return;
    function show() { fieldset.classList.toggle("off", !box.checked); }
    box.addEventListener("change", show);
    show();
  });
})();
