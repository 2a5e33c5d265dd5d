/* The transcript page: tracker state on demand, and new events as they are stored. */
(function () {
  "use strict";
  var section = document.getElementById("transcript");
  if (!section) { return; }
  var sender = section.dataset.sender;
  var version = parseInt(section.dataset.version, 10) || 0;
  var list = section.querySelector("ol.items");
  var status = document.getElementById("live-status");
  var panel = document.getElementById("state");
  var values = document.getElementById("state-values");
  var POLL_MS = 1500;

  function show(key, value) {
    var el = values.querySelector('[data-key="' + key + '"]');
    if (!el) { return; }
    if (value === null || value === undefined || value === "") {
      el.textContent = "—";
    } else if (typeof value === "object") {
      el.textContent = JSON.stringify(value, null, 2);
    } else {
      el.textContent = String(value);
    }
  }

  function loadState(seq) {
    var url = "/ui/api/state/" + encodeURIComponent(sender) + "?seq=" + seq;
    fetch(url, {credentials: "same-origin"}).then(function (r) {
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      return r.json();
    }).then(function (state) {
      values.hidden = false;
      show("seq", state.seq);
      show("latest_intent", state.latest_intent === null ? null :
        state.latest_intent + (state.latest_confidence === null || state.latest_confidence === undefined ? "" : " (" + Number(state.latest_confidence).toFixed(2) + ")"));
      show("latest_action", state.latest_action);
      show("active_loop", state.active_loop && state.active_loop.name ? state.active_loop.name : null);
      show("paused", state.paused ? "yes" : "no");
      show("slots", state.slots);
      var current = list.querySelector(".item.selected");
      if (current) { current.classList.remove("selected"); }
      var item = document.getElementById("e" + seq);
      if (item) { item.classList.add("selected"); }
      panel.focus({preventScroll: true});
    }).catch(function (err) {
      status.textContent = "Could not load the state: " + err.message;
    });
  }

  section.addEventListener("click", function (event) {
    var button = event.target.closest(".state-btn");
    if (button) { loadState(parseInt(button.dataset.seq, 10)); }
  });

  function poll() {
    var url = "/ui/api/events/" + encodeURIComponent(sender) + "?after=" + version;
    fetch(url, {credentials: "same-origin"}).then(function (r) {
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      return r.json();
    }).then(function (answer) {
      if (answer.reload) {
        status.textContent = "The conversation was replaced or deleted; reload the page.";
        return;
      }
      if (answer.version > version) {
        var added = answer.version - version;
        version = answer.version;
        section.dataset.version = String(version);
        /* server-rendered and autoescaped by the same template as the page */
        list.insertAdjacentHTML("beforeend", answer.html);
        status.textContent = version + " events; " + added + " new.";
      }
      window.setTimeout(poll, POLL_MS);
    }).catch(function (err) {
      status.textContent = "Live updates paused: " + err.message;
      window.setTimeout(poll, POLL_MS * 4);
    });
  }
  window.setTimeout(poll, POLL_MS);
})();
