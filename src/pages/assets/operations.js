// The operations dashboard's live feed: every message on the bus, pushed by the server
// (Server-Sent Events at the list's data-source), newest first, the last 50 kept.
(function () {
  "use strict";
  var list = document.getElementById("live");
  if (!list || !window.EventSource) {
    return;
  }
  var source = new EventSource(list.getAttribute("data-source"));
  source.onmessage = function (event) {
    var happened = JSON.parse(event.data);
    var item = document.createElement("li");
    item.setAttribute("data-case", happened.case_id);
    var time = document.createElement("time");
    time.textContent = new Date(happened.at).toLocaleTimeString("zh-CN", { hour12: false });
    item.appendChild(time);
    item.appendChild(document.createTextNode(
      " " + happened.words + "（" + happened.kind + "） " + happened.case_id + " " +
      happened.source + " → " + happened.target));
    list.insertBefore(item, list.firstChild);
    while (list.children.length > 50) {
      list.removeChild(list.lastChild);
    }
  };
})();
