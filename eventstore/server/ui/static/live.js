/* The live tail: poll for events stored since the page opened, newest on top. */
(function () {
  "use strict";
  var table = document.getElementById("live");
  if (!table) { return; }
  var rows = document.getElementById("live-rows");
  var status = document.getElementById("live-status");
  var after = table.dataset.after;
  var since = table.dataset.since;
  var seen = new Set();
  var total = 0;
  var MAX_ROWS = 500;
  var POLL_MS = 1500;
  var filters = new URLSearchParams(window.location.search);
  filters.delete("token");

  function poll() {
    var params = new URLSearchParams(filters);
    if (after !== "") { params.set("after", after); } else { params.set("stamp", since); }
    fetch("/ui/api/live?" + params, {credentials: "same-origin"}).then(function (r) {
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      return r.json();
    }).then(function (answer) {
      if (answer.after !== null && answer.after !== undefined) { after = String(answer.after); }
      if (answer.stamp !== null && answer.stamp !== undefined) { since = String(answer.stamp); }
      if (answer.count > 0) {
        var holder = document.createElement("tbody");
        /* server-rendered and autoescaped */
        holder.innerHTML = answer.html;
        var fresh = Array.prototype.filter.call(holder.children, function (tr) {
          if (seen.has(tr.dataset.key)) { return false; }
          seen.add(tr.dataset.key);
          return true;
        });
        fresh.forEach(function (tr) { rows.insertBefore(tr, rows.firstChild); });
        while (rows.children.length > MAX_ROWS) { rows.removeChild(rows.lastChild); }
        total += fresh.length;
        if (fresh.length) { status.textContent = total + (total === 1 ? " event" : " events") + " since this page opened."; }
      }
      window.setTimeout(poll, POLL_MS);
    }).catch(function (err) {
      status.textContent = "Live updates paused: " + err.message;
      window.setTimeout(poll, POLL_MS * 4);
    });
  }
  poll();
})();
