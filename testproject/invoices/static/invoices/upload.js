// Send an upload form with a progress bar: the XHR's upload progress events.
// Without JavaScript (or XHR) the form posts as usual; nothing here loads anything
// from the internet. The view answers such a request with JSON naming the page to
// go to, so that the message it leaves is shown there (an XHR would follow a
// redirect itself, and take the message with it).
"use strict";

(function () {
  // As warehouse.progress.human_size prints sizes: "6 bytes", "3.3 MiB".
  function humanSize(size) {
    if (size < 1024) return size === 1 ? "1 byte" : size + " bytes";
    const units = ["KiB", "MiB", "GiB", "TiB"];
    let unit = 0;
    size /= 1024;
    while (Math.round(size * 10) / 10 >= 1024 && unit < units.length - 1) {
      size /= 1024;
      unit += 1;
    }
    return size.toFixed(1) + " " + units[unit];
  }

  function send(form, event) {
    if (!window.XMLHttpRequest || !window.FormData) return; // the plain post, then
    event.preventDefault();
    const box = form.querySelector(".upload-progress");
    const bar = box.querySelector("progress");
    const status = box.querySelector(".upload-status");
    const button = form.querySelector("button[type=submit]");
    const request = new XMLHttpRequest();
    request.open("POST", form.action || window.location.href);
    request.setRequestHeader("X-Requested-With", "XMLHttpRequest");
    request.upload.addEventListener("progress", function (progress) {
      if (!progress.lengthComputable) return;
      const percent = Math.floor((100 * progress.loaded) / progress.total);
      bar.value = percent;
      status.textContent =
        humanSize(progress.loaded) + " of " + humanSize(progress.total) + " (" + percent + "%)";
    });
    request.upload.addEventListener("load", function () {
      bar.value = 100;
      status.textContent = "Saving…";
    });
    request.addEventListener("load", function () {
      const type = request.getResponseHeader("Content-Type") || "";
      if (request.status === 200 && type.startsWith("application/json")) {
        window.location.assign(JSON.parse(request.responseText).redirect);
        return;
      }
      // The form again with its errors, or an error page: show it as a post would.
      document.open();
      document.write(request.responseText);
      document.close();
    });
    request.addEventListener("error", function () {
      box.classList.add("failed");
      status.textContent = "The upload failed: the server could not be reached.";
      button.disabled = false;
    });
    button.disabled = true;
    box.hidden = false;
    status.textContent = "Starting…";
    request.send(new FormData(form));
  }

  document.querySelectorAll("form[data-upload-progress]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      send(form, event);
    });
  });
})();
