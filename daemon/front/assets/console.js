// The Lethe web console's only script: no framework, no inline code (the
// pages' CSP forbids it). Two jobs:
// - elements with data-poll="URL" are refreshed from that partial every
//   data-every milliseconds (the bay grid's live progress);
// - the body's data-session-every="MS" asks /console/session that often
//   and goes back to the login page, with a banner, once the session ended.
// Both requests are "polling" on the server: they never keep a session
// from timing out.
(function () {
  "use strict";
  var ENDED = "/console/login?ended=1";

  function ended(resp) {
    if (resp.status === 401) {
      window.location.assign(ENDED);
      return true;
    }
    return false;
  }

  function poll(el) {
    var url = el.getAttribute("data-poll");
    var every = parseInt(el.getAttribute("data-every"), 10) || 2000;
    var last = null;
    function tick() {
      fetch(url, {
        credentials: "same-origin",
        cache: "no-store",
        headers: { "X-Lethe-Partial": "1" }
      })
        .then(function (resp) {
          if (ended(resp) || !resp.ok) {
            return null;
          }
          return resp.text();
        })
        .then(function (html) {
          // Swap only what changed, so focus and reading position stay put
          // while nothing moves.
          if (html !== null && html !== last) {
            last = html;
            el.innerHTML = html;
          }
        })
        .catch(function () { /* the appliance is restarting: try again */ })
        .then(function () { window.setTimeout(tick, every); });
    }
    window.setTimeout(tick, every);
  }

  function watchSession(every) {
    window.setInterval(function () {
      fetch("/console/session", { credentials: "same-origin", cache: "no-store" })
        .then(ended)
        .catch(function () { /* unreachable now: the next check tells */ });
    }, every);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var polled = document.querySelectorAll("[data-poll]");
    for (var i = 0; i < polled.length; i++) {
      poll(polled[i]);
    }
    var every = parseInt(document.body.getAttribute("data-session-every"), 10);
    if (every > 0) {
      watchSession(every);
    }
  });
})();
