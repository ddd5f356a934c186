// crmsms: small progressive enhancements. Everything works without JavaScript.
(function () {
  "use strict";
  // GSM 03.38 basic and extension tables: a text outside them is sent as UCS-2.
  var BASIC = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
  var EXTENDED = "^{}\\[~]|€\f";
  // Characters that look like GSM ones but force UCS-2 (they come from word processors).
  var LOOKALIKES = { "\u2019": "'", "\u2018": "'", "\u201C": '"', "\u201D": '"', "\u00AB": '"', "\u00BB": '"',
    "\u2013": "-", "\u2014": "-", "\u2026": "...", "\u00A0": " ", "\u202F": " " };

  function measure(text) {
    text = text.replace(/\r\n?/g, "\n"); // as the server stores it: one LF per line break
    var septets = 0, chars = Array.from(text), forcing = [];
    chars.forEach(function (c) {
      if (BASIC.indexOf(c) >= 0) septets += 1;
      else if (EXTENDED.indexOf(c) >= 0) septets += 2;
      else if (forcing.indexOf(c) < 0) forcing.push(c);
    });
    if (!text.length) return { chars: 0, encoding: "GSM-7", parts: 0, forcing: [] };
    if (!forcing.length) return { chars: chars.length, encoding: "GSM-7", parts: septets <= 160 ? 1 : Math.ceil(septets / 153), forcing: [] };
    var units = text.length; // UTF-16 code units: an emoji counts 2
    return { chars: chars.length, encoding: "UCS-2", parts: units <= 70 ? 1 : Math.ceil(units / 67), forcing: forcing };
  }

  function describe(c) {
    if (c === "\u00A0" || c === "\u202F") return "non-breaking space";
    return c;
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
    var timer = null;

    function fieldList() {
      return editor.querySelector("select[data-fields-for='" + module + "']");
    }

    function update() {
      var m = measure(field.value);
      counter.textContent = m.chars + " / " + max + " characters · " + m.encoding + " · " + m.parts + " part" + (m.parts === 1 ? "" : "s");
      counter.classList.toggle("over", m.chars > max);
      ucs2.hidden = !m.forcing.length;
      if (m.forcing.length) {
        ucs2.querySelector("[data-ucs2-text]").textContent = "Sent as UCS-2 (70 characters a part instead of 160) because of: " +
          m.forcing.map(describe).join(" ") + ".";
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
      data.append("csrfmiddlewaretoken", form.querySelector("[name=csrfmiddlewaretoken]").value);
      fetch(editor.getAttribute("data-preview-url"), { method: "POST", body: data, credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (result) {
          problems.textContent = "";
          (result.problems || []).forEach(function (p) {
            var li = document.createElement("li");
            li.textContent = p.message;
            problems.appendChild(li);
          });
          if (!preview) return;
          preview.hidden = !(result.text && !(result.problems || []).length);
          if (!preview.hidden) {
            preview.querySelector("[data-preview-text]").textContent = result.text;
            preview.querySelector("[data-preview-meta]").textContent = result.characters + " characters · " +
              result.encoding + " · " + result.segments + " part" + (result.segments === 1 ? "" : "s");
          }
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
      update();
    });

    replace.addEventListener("click", function () {
      var text = field.value;
      Object.keys(LOOKALIKES).forEach(function (c) { text = text.split(c).join(LOOKALIKES[c]); });
      field.value = text;
      update();
    });

    // The template form: its field list follows « based on Contacts or Accounts ».
    if (form) form.addEventListener("change", function (event) {
      if (event.target.name === "module") {
        module = event.target.value;
        editor.querySelectorAll("select[data-fields-for]").forEach(function (s) {
          var mine = s.getAttribute("data-fields-for") === module;
          s.hidden = !mine; s.disabled = !mine;
        });
        update();
      }
      if (event.target.name === "template") {
        var bodies = JSON.parse(document.getElementById("sms-template-bodies").textContent);
        var body = bodies[event.target.value];
        if (body !== undefined && (!field.value.trim() || field.value === body ||
            window.confirm("Replace the text with the template's?"))) {
          field.value = body;
          update();
        }
      }
    });

    field.addEventListener("input", update);
    update();
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

  window.addEventListener("pageshow", function (event) {
    if (event.persisted) document.querySelectorAll("form[data-submitted]").forEach(function (f) { delete f.dataset.submitted; });
  });

  // A panel marked data-live (messages on their way) refreshes itself every 2 s until
  // nothing in it is in flight any more, so "To be sent" turns into "Sent" on its own.
  document.querySelectorAll("[data-live][id]").forEach(function (panel) {
    var id = panel.id, rounds = 0;
    function refresh() {
      if (++rounds > 60) return;
      fetch(window.location.href, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) {
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(id);
          var current = document.getElementById(id);
          if (!fresh || !current) return;
          current.replaceWith(fresh);
          if (fresh.hasAttribute("data-live")) setTimeout(refresh, 2000);
        })
        .catch(function () { setTimeout(refresh, 5000); });
    }
    setTimeout(refresh, 2000);
  });
})();
