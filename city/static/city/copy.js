// Copy buttons: <button type="button" data-copy="ID" data-copy-status="STATUS_ID"> copies the
// value of the input #ID and says so in #STATUS_ID (a live region). Without the Clipboard API
// (an http:// page, an old browser) it falls back to selecting the text for the user to copy.
(function () {
  "use strict";

  function say(button, text) {
    var status = document.getElementById(button.getAttribute("data-copy-status"));
    if (status) status.textContent = text;
  }

  function copyBySelecting(button, input) {
    input.focus();
    input.select();
    var copied = false;
    try {
      copied = document.execCommand("copy");
    } catch (error) {
      copied = false;
    }
    say(button, copied ? "Copied." : "Selected: press Ctrl+C (⌘C on a Mac) to copy.");
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy]");
    if (!button) return;
    var input = document.getElementById(button.getAttribute("data-copy"));
    if (!input) return;
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(
        function () { say(button, "Copied."); },
        function () { copyBySelecting(button, input); }
      );
    } else {
      copyBySelecting(button, input);
    }
  });

  // A click into the read-only field selects the whole secret, ready to copy by hand.
  document.addEventListener("focusin", function (event) {
    var input = event.target;
    if (input.matches && input.matches("input[readonly]") && input.id) {
      if (document.querySelector('button[data-copy="' + input.id + '"]')) input.select();
    }
  });
})();
