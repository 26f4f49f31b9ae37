/*
 * The tuning page (templates/dashboard/tuning.html). dashboard.js submits the form in the
 * background on every change and puts the preview fragment into #tuning-preview; this file adds:
 *
 *   - a range slider beside every number input marked data-slider="min:max:step", kept in sync
 *     with it (the number input is what the form sends, so the page works without script);
 *   - the preview's field errors copied next to their fields (and cleared when they go away).
 */
(function () {
  "use strict";

  function addSliders(form) {
    Array.prototype.forEach.call(form.querySelectorAll("input[type=number][data-slider]"), function (input) {
      var parts = input.getAttribute("data-slider").split(":");
      var slider = document.createElement("input");
      slider.type = "range";
      slider.min = parts[0];
      slider.max = parts[1];
      slider.step = parts[2];
      slider.value = input.value;
      slider.setAttribute("data-for", input.id);
      slider.setAttribute("aria-label", (input.labels && input.labels[0] ? input.labels[0].textContent : input.name) + " slider");
      // The slider has no name: the number input carries the value. Its own input event still
      // bubbles to the form (after this handler), which schedules the preview.
      slider.addEventListener("input", function () { input.value = slider.value; });
      input.addEventListener("input", function () { slider.value = input.value; });
      input.insertAdjacentElement("afterend", slider);
    });
  }

  function showErrors(form, preview) {
    // Only previews of the person's own changes speak for the fields: the first preview (of the
    // active version) must not clear the errors a refused save put there.
    if (!form.getAttribute("data-touched")) return;
    var box = preview.querySelector("[data-preview-errors]");
    if (!box) return; // Still loading, or a failure message: leave the fields as they are.
    var byField = {};
    Array.prototype.forEach.call(box.querySelectorAll("[data-error-for]"), function (item) {
      var name = item.getAttribute("data-error-for");
      (byField[name] = byField[name] || []).push(item.textContent.replace(name + ": ", ""));
    });
    Array.prototype.forEach.call(form.querySelectorAll(".tuning-field"), function (field) {
      var name = field.getAttribute("data-field");
      var slot = field.querySelector(".field-errors");
      var messages = byField[name] || [];
      field.classList.toggle("has-error", messages.length > 0);
      if (!slot) return;
      slot.textContent = "";
      if (!messages.length) return;
      var list = document.createElement("ul");
      list.className = "errorlist";
      messages.forEach(function (text) {
        var li = document.createElement("li");
        li.textContent = text;
        list.appendChild(li);
      });
      slot.appendChild(list);
    });
  }

  function init() {
    var form = document.getElementById("tuning-form");
    var preview = document.getElementById("tuning-preview");
    if (!form || !preview) return;
    addSliders(form);
    function touched() { form.setAttribute("data-touched", "true"); }
    form.addEventListener("input", touched);
    form.addEventListener("change", touched);
    new MutationObserver(function () { showErrors(form, preview); }).observe(preview, { childList: true });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
