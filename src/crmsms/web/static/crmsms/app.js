// crmsms: small progressive enhancements. Everything works without JavaScript.
(function () {
  "use strict";
  // GSM 03.38 basic and extension tables: a text outside them is sent as UCS-2.
  var BASIC = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
  var EXTENDED = "^{}\\[~]|€\f";

  function measure(text) {
    text = text.replace(/\r\n?/g, "\n"); // as the server stores it: one LF per line break
    var septets = 0, gsm = true, chars = Array.from(text);
    for (var i = 0; i < chars.length; i++) {
      var c = chars[i];
      if (BASIC.indexOf(c) >= 0) septets += 1;
      else if (EXTENDED.indexOf(c) >= 0) septets += 2;
      else { gsm = false; break; }
    }
    if (!text.length) return { chars: 0, encoding: "GSM-7", parts: 0 };
    if (gsm) return { chars: chars.length, encoding: "GSM-7", parts: septets <= 160 ? 1 : Math.ceil(septets / 153) };
    var units = text.length; // UTF-16 code units: an emoji counts 2
    return { chars: chars.length, encoding: "UCS-2", parts: units <= 70 ? 1 : Math.ceil(units / 67) };
  }

  document.querySelectorAll("[data-counter-for]").forEach(function (counter) {
    var field = document.getElementById(counter.getAttribute("data-counter-for"));
    var max = parseInt(counter.getAttribute("data-max"), 10);
    if (!field) return;
    function update() {
      var m = measure(field.value);
      counter.textContent = m.chars + " / " + max + " characters · " + m.encoding + " · " + m.parts + " part" + (m.parts === 1 ? "" : "s");
      counter.classList.toggle("over", m.chars > max);
    }
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
