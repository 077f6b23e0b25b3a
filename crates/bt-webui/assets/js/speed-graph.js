// The live graph of global download and upload speed over the last minutes.

import * as fmt from './format.js';
import { HISTORY } from './store.js';

export function drawSpeedGraph(canvas, history) {
  const dpr = devicePixelRatio || 1;
  const w = Math.max(1, Math.floor(canvas.clientWidth * dpr)), hgt = Math.max(1, Math.floor(canvas.clientHeight * dpr));
  if (canvas.width !== w) canvas.width = w;
  if (canvas.height !== hgt) canvas.height = hgt;
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, w, hgt);
  const css = getComputedStyle(canvas);
  const max = Math.max(1024, ...history.map(([, d, u]) => Math.max(d, u)));
  const step = w / (HISTORY - 1);
  const x0 = w - (history.length - 1) * step;
  const line = (k, color, fill) => {
    ctx.beginPath();
    history.forEach((s, i) => {
      const x = x0 + i * step, y = hgt - 2 * dpr - (s[k] / max) * (hgt - 4 * dpr);
      if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y);
    });
    ctx.strokeStyle = color;
    ctx.lineWidth = 1.5 * dpr;
    ctx.stroke();
    if (fill && history.length > 1) {
      ctx.lineTo(w, hgt);
      ctx.lineTo(x0, hgt);
      ctx.closePath();
      ctx.globalAlpha = 0.15;
      ctx.fillStyle = color;
      ctx.fill();
      ctx.globalAlpha = 1;
    }
  };
  line(1, css.getPropertyValue('--dl').trim() || '#2563eb', true);
  line(2, css.getPropertyValue('--ul').trim() || '#16a34a', false);
  const last = history[history.length - 1] ?? [0, 0, 0];
  canvas.setAttribute('aria-label',
    `Speed over the last ${Math.round((HISTORY * 1.5) / 60)} minutes: download ${fmt.speed(last[1], '0 B/s')}, upload ${fmt.speed(last[2], '0 B/s')}, peak ${fmt.speed(max, '0 B/s')}`);
}
