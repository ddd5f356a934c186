// crmsms: small progressive enhancements. Everything works without JavaScript.
(function () {
  "use strict";
  // GSM 03.38 basic and extension tables: a text outside them is sent as UCS-2.
  var BASIC = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
  var EXTENDED = "^{}\\[~]|€\f";

  function measure(text) {
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
      counter.textContent = m.chars + " characters · " + m.encoding + " · " + m.parts + " part" + (m.parts === 1 ? "" : "s");
      counter.classList.toggle("over", m.chars > max);
    }
    field.addEventListener("input", update);
    update();
  });
})();
