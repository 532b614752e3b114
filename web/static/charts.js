// Time-series charts on uPlot (vendor/uplot, loaded as the global uPlot).

import * as fmt from './fmt.js';

function cssVar(name, fallback) {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

// lineChart draws series (each {label, color, fmt}) into el, sized to el's
// width. set(data) redraws with [[unix seconds…], [values…]…] and records
// the number of points drawn in el.dataset.points.
export function lineChart(el, series, yFmt) {
  const axis = cssVar('--muted', '#888');
  const grid = cssVar('--grid', 'rgba(128,128,128,.15)');
  const width = () => Math.max(240, el.clientWidth || 300);
  const opts = {
    width: width(),
    height: 180,
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true }, y: { range: (_u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
    axes: [
      { stroke: axis, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } },
      { stroke: axis, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, size: 60, values: (_u, vals) => vals.map((v) => yFmt(v)) },
    ],
    series: [
      { value: (_u, v) => (v == null ? '–' : new Date(v * 1000).toLocaleTimeString()) },
      ...series.map((s) => ({
        label: s.label,
        stroke: cssVar(s.color, '#3b82f6'),
        width: 1.5,
        points: { show: false },
        value: (_u, v) => (v == null ? '–' : (s.fmt || yFmt)(v)),
      })),
    ],
  };
  let data = [[], ...series.map(() => [])];
  const u = new window.uPlot(opts, data, el);
  el.dataset.points = '0';
  const ro = new ResizeObserver(() => {
    const w = width();
    if (Math.abs(w - u.width) > 1) u.setSize({ width: w, height: 180 });
  });
  ro.observe(el);
  return {
    set(d) {
      data = d;
      u.setData(d);
      el.dataset.points = String(d[0].length);
    },
    destroy() {
      ro.disconnect();
      u.destroy();
    },
  };
}

export const countFmt = (v) => (v >= 10000 ? fmt.int(v / 1000) + 'k' : Number.isInteger(v) ? fmt.int(v) : fmt.rate(v));
export const rateFmt = (v) => fmt.rate(v);
export const msFmt = (v) => fmt.ms(v);
