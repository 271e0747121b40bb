// Ask before destructive actions: any form with data-confirm.
document.addEventListener("submit", function (event) {
  var form = event.target;
  var question = form.getAttribute && form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

// Signup records the browser's time zone (a hidden field; UTC without script),
// so times are shown in it until the user chooses another on /account.
document.addEventListener("DOMContentLoaded", function () {
  var field = document.querySelector("input[data-browser-zone]");
  if (!field || !window.Intl) {
    return;
  }
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (zone) {
    field.value = zone;
  }
});
