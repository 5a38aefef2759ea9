// The operations dashboard: its live feed — every message on the bus, pushed by the server
// (Server-Sent Events at the list's data-source), newest first, the last 50 kept.
(function () {
  "use strict";
  var list = document.getElementById("live");
  if (!list || !window.EventSource) {
    return;
  }
  var source = new EventSource(list.getAttribute("data-source"));
  // Open: everything published from now on will show.
  source.onopen = function () {
    list.setAttribute("data-connected", "true");
  };
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

// The dashboard's charts: each `.chart` element's data-chart holds its labels and series; the
// table beside it says the same in text.
(function () {
  "use strict";
  if (!window.echarts) {
    return;
  }
  var charts = document.querySelectorAll(".chart[data-chart]");
  Array.prototype.forEach.call(charts, function (element) {
    var data = JSON.parse(element.getAttribute("data-chart"));
    var chart = window.echarts.init(element, null, { renderer: "canvas" });
    chart.setOption({
      animation: false,
      legend: { top: 0 },
      grid: { left: 40, right: 40, top: 36, bottom: 60 },
      xAxis: { type: "category", data: data.labels, axisLabel: { rotate: 30 } },
      yAxis: [
        { type: "value", name: "%", min: 0, max: 100 },
        { type: "value", name: "件", minInterval: 1 }
      ],
      series: [
        { name: data.series[0].name, type: "bar", data: data.series[0].values, itemStyle: { color: "#0b4f9c" } },
        { name: data.series[1].name, type: "bar", yAxisIndex: 1, data: data.series[1].values, itemStyle: { color: "#a4001d" } }
      ]
    });
    element.setAttribute("data-drawn", "true");
    window.addEventListener("resize", function () { chart.resize(); });
  });
})();
