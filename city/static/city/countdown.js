// Counts down what the server rendered as seconds left (data-countdown), once a second; at
// zero the element says its data-expired text. Without JavaScript the server's figure stands.
(function () {
  function format(seconds) {
    var m = Math.floor(seconds / 60), s = seconds % 60;
    return m + ":" + (s < 10 ? "0" : "") + s;
  }
  function start(element) {
    if (element.dataset.counting) return;
    element.dataset.counting = "1";
    var end = Date.now() + Number(element.dataset.countdown) * 1000;
    var clock = element.querySelector(".countdown");
    function tick() {
      var left = Math.max(0, Math.round((end - Date.now()) / 1000));
      if (left === 0) {
        element.textContent = element.dataset.expired;
        // The page's live part reloads on it (what the owner may do next has changed).
        element.dispatchEvent(new CustomEvent("expired", { bubbles: true }));
        return;
      }
      if (clock) clock.textContent = format(left);
      setTimeout(tick, 1000);
    }
    tick();
  }
  function scan() { document.querySelectorAll("[data-countdown]").forEach(start); }
  document.addEventListener("DOMContentLoaded", scan);
  // The live part of a task's page is swapped in by htmx: count down in the new one too.
  document.addEventListener("htmx:afterSettle", scan);
})();
